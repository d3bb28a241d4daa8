/**
 * Tail latency at a fixed rate: every target gets the same open-loop load, half of HAProxy's
 * saturation rate, so each is compared at a load HAProxy handles with room to spare. A target
 * that saturates below that rate queues, and its percentiles say so (latency is counted from each
 * request's intended send time).
 */
import { type RunContext, errorText, targetAlive } from './context.js';
import { type LatencyRow, type ThroughputRow, round2 } from './rows.js';
import type { RunningTarget } from './targets.js';

/** The fixed rate and where it came from: HAProxy's saturation / 2, else the nearest stand-in, said so. */
export function fixedRate(throughput: readonly ThroughputRow[]): { rate: number; basis: string } | null {
  const by = (name: string): ThroughputRow | undefined => throughput.find((r) => r.target === name && r.rps > 0);
  const haproxy = by('haproxy');
  if (haproxy) return { rate: Math.round(haproxy.rps / 2), basis: 'haproxy saturation / 2' };
  const nginx = by('nginx');
  if (nginx) return { rate: Math.round(nginx.rps / 2), basis: 'nginx saturation / 2 (haproxy did not run)' };
  const proxies = throughput.filter((r) => r.target !== 'direct' && r.rps > 0);
  if (proxies.length > 0) {
    const slowest = proxies.reduce((a, b) => (b.rps < a.rps ? b : a));
    return { rate: Math.round(slowest.rps / 2), basis: `${slowest.target} saturation / 2 (haproxy and nginx did not run)` };
  }
  return null;
}

export async function latencyPhase(
  ctx: RunContext,
  targets: readonly RunningTarget[],
  throughput: readonly ThroughputRow[],
  rate: { rate: number; basis: string },
  o: { durationSec: number; warmupSec: number },
): Promise<LatencyRow[]> {
  const open = ctx.open!;
  const rows: LatencyRow[] = [];
  for (const t of targets) {
    if (!targetAlive(t)) continue;
    try {
      ctx.log(`${t.name}: open loop at ${rate.rate.toLocaleString('en-US')} req/s for ${o.durationSec} s`);
      const r = await open.run(ctx.sup, { url: t.url, rate: rate.rate, connections: ctx.connections, durationSec: o.durationSec, warmupSec: o.warmupSec, cpus: ctx.layout.clients });
      if (!targetAlive(t)) throw new Error(`${t.name} exited during the run`);
      const saturation = throughput.find((x) => x.target === t.name);
      rows.push({
        scenario: 'balancer',
        phase: 'latency',
        target: t.name,
        transport: t.transport,
        connections: ctx.connections,
        tool: open.name,
        rate: rate.rate,
        rateBasis: rate.basis,
        rps: r.rps,
        latencyMs: r.latencyMs,
        errors: r.errors,
        errorKinds: r.errorKinds,
        loadOfSaturation: saturation && saturation.rps > 0 ? round2(rate.rate / saturation.rps) : null,
        ratioToHaproxy: null,
        queued: r.queued ?? null,
        generatorLagMs: r.lagMs ?? null,
      });
    } catch (err) {
      ctx.emit({ scenario: 'balancer', phase: 'latency', target: t.name, error: errorText(err) });
    }
  }
  const haproxy = rows.find((r) => r.target === 'haproxy');
  for (const r of rows) {
    // A run where nothing succeeded has no latency to compare (its percentiles are zeros).
    if (haproxy && haproxy.latencyMs.p99 > 0 && r.rps > 0) r.ratioToHaproxy = round2(r.latencyMs.p99 / haproxy.latencyMs.p99);
    ctx.emit(r);
  }
  return rows;
}
