/**
 * Saturation throughput: a closed loop of N connections against each target, several short runs
 * each, reported as the median run. Runs are interleaved across targets (run 1 of every target,
 * then run 2, ...) so that a slow minute on this shared machine lands on all of them alike, not
 * on whichever target was running at the time; ratios then compare like with like.
 */
import { type RunContext, errorText, medianRun, targetAlive } from './context.js';
import { type ThroughputRow, round2 } from './rows.js';
import type { RunningTarget } from './targets.js';
import type { LoadResult } from './wrk.js';

export interface SaturationOptions {
  runs: number;
  durationSec: number;
  /** One unmeasured run first, so Node targets are measured after JIT warm-up (0: none). */
  warmupSec: number;
}

/** Measures every target; a target that crashes or errors is reported and dropped, the others go on. */
export async function measureSaturation(
  ctx: RunContext,
  targets: readonly RunningTarget[],
  o: SaturationOptions,
  phase: 'throughput' | 'scaling',
): Promise<Map<RunningTarget, LoadResult[]>> {
  const closed = ctx.closed!;
  const results = new Map<RunningTarget, LoadResult[]>(targets.map((t) => [t, []]));
  const failed = new Set<RunningTarget>();
  const once = async (t: RunningTarget, durationSec: number): Promise<LoadResult | null> => {
    try {
      const r = await closed.run(ctx.sup, { url: t.url, connections: ctx.connections, durationSec, cpus: ctx.layout.clients });
      if (!targetAlive(t)) throw new Error(`${t.name} exited during the run: ${t.proc?.output.slice(-1000) ?? ''}`);
      return r;
    } catch (err) {
      failed.add(t);
      ctx.emit({ scenario: 'balancer', phase, target: t.name, error: errorText(err) });
      return null;
    }
  };
  if (o.warmupSec > 0) {
    for (const t of targets) {
      ctx.log(`warming up ${t.name}`);
      await once(t, Math.max(o.warmupSec, closed.minDurationSec));
    }
  }
  for (let run = 1; run <= o.runs; run++) {
    for (const t of targets) {
      if (failed.has(t)) continue;
      const r = await once(t, o.durationSec);
      if (r === null) continue;
      results.get(t)!.push(r);
      ctx.log(`${t.name} run ${run}/${o.runs}: ${r.rps.toLocaleString('en-US')} req/s, p99 ${r.latencyMs.p99} ms, ${r.errors} errors`);
    }
  }
  for (const t of failed) results.delete(t);
  return results;
}

export async function throughputPhase(ctx: RunContext, targets: readonly RunningTarget[], o: SaturationOptions): Promise<ThroughputRow[]> {
  const measured = await measureSaturation(ctx, targets, o, 'throughput');
  const medians = new Map([...measured].map(([t, runs]) => [t.name, medianRun(runs)]));
  const haproxy = medians.get('haproxy');
  const direct = medians.get('direct');
  const rows: ThroughputRow[] = [];
  for (const [t, runs] of measured) {
    const m = medianRun(runs);
    const row: ThroughputRow = {
      scenario: 'balancer',
      phase: 'throughput',
      target: t.name,
      transport: t.transport,
      connections: ctx.connections,
      tool: ctx.closed!.name,
      runs: runs.length,
      rps: m.rps,
      rpsRuns: runs.map((r) => r.rps),
      ratioToHaproxy: haproxy && haproxy.rps > 0 ? round2(m.rps / haproxy.rps) : null,
      ratioToDirect: direct && direct.rps > 0 ? round2(m.rps / direct.rps) : null,
      latencyMs: m.latencyMs,
      errors: m.errors,
      errorKinds: m.errorKinds,
    };
    rows.push(row);
    ctx.emit(row);
  }
  return rows;
}
