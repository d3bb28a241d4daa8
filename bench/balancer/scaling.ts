/**
 * Borealis with more balancer threads (`--threads N`, uWebSockets.js sharing the port across
 * worker threads). The proxy may use every core here, so all N, including N = 1, run unpinned
 * from the proxy core and compete with the load generator and backends: the ratios to one thread
 * are within this setup only, and on a 2-core machine they mostly show that contention.
 */
import { type RunContext, errorText, medianRun } from './context.js';
import { type ScalingRow, round2 } from './rows.js';
import { startTarget } from './targets.js';
import { type SaturationOptions, measureSaturation } from './throughput.js';

export async function scalingPhase(ctx: RunContext, threads: readonly number[], o: SaturationOptions): Promise<ScalingRow[]> {
  const rows: ScalingRow[] = [];
  for (const n of threads) {
    let target;
    try {
      target = await startTarget('borealis', { sup: ctx.sup, inst: ctx.inst, dir: ctx.dir, cpus: ctx.layout.all, threads: n, tag: `threads-${n}` }, ctx.upstreams);
      ctx.ports.add(target.port);
      const runs = (await measureSaturation(ctx, [target], o, 'scaling')).get(target);
      if (runs === undefined || runs.length === 0) continue;
      const m = medianRun(runs);
      rows.push({
        scenario: 'balancer',
        phase: 'scaling',
        target: 'borealis',
        transport: target.transport,
        threads: n,
        connections: ctx.connections,
        tool: ctx.closed!.name,
        runs: runs.length,
        rps: m.rps,
        rpsRuns: runs.map((r) => r.rps),
        latencyMs: m.latencyMs,
        errors: m.errors,
        errorKinds: m.errorKinds,
        ratioToOneThread: null,
      });
    } catch (err) {
      ctx.emit({ scenario: 'balancer', phase: 'scaling', target: `borealis --threads ${n}`, error: errorText(err) });
    } finally {
      if (target?.proc) await ctx.sup.stop(target.proc);
    }
  }
  const one = rows.find((r) => r.threads === 1);
  for (const r of rows) {
    if (one && one.rps > 0) r.ratioToOneThread = round2(r.rps / one.rps);
    ctx.emit(r);
  }
  return rows;
}
