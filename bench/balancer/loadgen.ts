/**
 * Our own load generator (`loadgen/`), run as its own process like wrk, so it can be pinned apart
 * from the proxy and never shares an event loop with the harness:
 * `node loadgen/main --url U [--rate R] --duration Ns --connections C --json`.
 * With --rate it is an open loop (latency from each request's intended send time); without, a
 * closed loop over C connections.
 */
import type { ClosedLoop, OpenLoop } from './load.js';
import type { Supervisor } from './processes.js';
import { REPO_ROOT, fileExists, nodeModuleArgs, nodeModuleFile } from './programs.js';
import type { LoadReport } from '../../loadgen/report.js';
import { type LoadResult, nonZero } from './wrk.js';

const MAIN = 'loadgen/main';

/** Null when loadgen is not in this build (it lands with the balancer issue). */
export function findLoadgen(): Loadgen | null {
  return fileExists(nodeModuleFile(MAIN)) ? new Loadgen() : null;
}

export function parseLoadgenOutput(out: string): LoadResult {
  const line = out
    .split('\n')
    .reverse()
    .find((l) => l.trimStart().startsWith('{'));
  if (line === undefined) throw new Error(`loadgen printed no JSON; output: ${out.slice(-1000)}`);
  const j = JSON.parse(line) as LoadReport;
  const lat = j.latencyMs;
  return {
    requests: j.requests,
    rps: Math.round(j.achievedRate),
    errors: Object.values(j.errors).reduce((a, b) => a + b, 0),
    errorKinds: nonZero(j.errors),
    latencyMs: { p50: lat.p50, p99: lat.p99, p999: lat.p999, max: lat.max },
    queued: j.queued,
    lagMs: j.maxLagMs,
  };
}

export class Loadgen implements ClosedLoop, OpenLoop {
  readonly name = 'loadgen';
  readonly minDurationSec = 0.1;

  async run(
    sup: Supervisor,
    o: { url: string; rate?: number; connections: number; durationSec: number; warmupSec?: number; cpus: string | undefined },
  ): Promise<LoadResult> {
    const ms = (sec: number): string => `${Math.round(sec * 1000)}ms`;
    const args = [...nodeModuleArgs(MAIN), '--url', o.url, '--duration', ms(o.durationSec), '--connections', String(o.connections), '--json'];
    if (o.warmupSec !== undefined && o.warmupSec > 0) args.push('--warmup', ms(o.warmupSec));
    if (o.rate !== undefined) args.push('--rate', String(o.rate));
    const p = sup.start('loadgen', process.execPath, args, { cpus: o.cpus, cwd: REPO_ROOT, quiet: true });
    const exit = await p.exited;
    if (exit.code !== 0) throw new Error(`loadgen exited with ${exit.code ?? exit.signal}: ${p.output.slice(-1000)}`);
    return parseLoadgenOutput(p.stdout);
  }
}
