/**
 * Closed-loop saturation runs with wrk (`-t1 -c64`). wrk's own summary is rounded for humans
 * ("54.58k", "1.18ms"), so a `done` hook in Lua prints the exact counts and latency percentiles on
 * one marked line, and that line is what we parse. A script with only `done` keeps wrk on its
 * fast path: no Lua runs per request.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClosedLoop } from './load.js';
import type { Supervisor } from './processes.js';

const MARK = 'BRL_WRK ';

const DONE_SCRIPT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${MARK}{"requests":%.0f,"durationUs":%.0f,"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},"latencyUs":{"p50":%.0f,"p99":%.0f,"p999":%.0f,"max":%.0f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`;

export interface LatencyMs {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LoadResult {
  requests: number;
  rps: number;
  /** connect + read + write + timeout errors, and non-2xx/3xx answers. */
  errors: number;
  /** The non-zero error counts by kind (the generator's names). */
  errorKinds: Record<string, number>;
  latencyMs: LatencyMs;
  /** Open loop: requests that could not go out at their intended time (the generator fell behind). */
  queued?: number;
  /** Open loop: how far behind its schedule the generator ran at worst. */
  lagMs?: number;
}

interface WrkLine {
  requests: number;
  durationUs: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { p50: number; p99: number; p999: number; max: number };
}

const msOfUs = (us: number): number => Math.round(us) / 1000;

export function nonZero(counts: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

/** The result in wrk's output (stdout of a run with the done script); throws when there is none. */
export function parseWrkOutput(out: string): LoadResult {
  const line = out.split('\n').find((l) => l.startsWith(MARK));
  if (line === undefined) throw new Error(`wrk printed no result line; output: ${out.slice(-1000)}`);
  const w = JSON.parse(line.slice(MARK.length)) as WrkLine;
  const e = w.errors;
  return {
    requests: w.requests,
    rps: w.durationUs > 0 ? Math.round((w.requests * 1e6) / w.durationUs) : 0,
    errors: e.connect + e.read + e.write + e.status + e.timeout,
    errorKinds: nonZero(e),
    latencyMs: { p50: msOfUs(w.latencyUs.p50), p99: msOfUs(w.latencyUs.p99), p999: msOfUs(w.latencyUs.p999), max: msOfUs(w.latencyUs.max) },
  };
}

export class Wrk implements ClosedLoop {
  readonly name = 'wrk';
  /** wrk counts duration in whole seconds. */
  readonly minDurationSec = 1;
  readonly #bin: string;
  readonly #script: string;

  /** Writes the done script into `dir`. */
  constructor(bin: string, dir: string) {
    this.#bin = bin;
    this.#script = join(dir, 'wrk-done.lua');
    writeFileSync(this.#script, DONE_SCRIPT);
  }

  async run(sup: Supervisor, o: { url: string; connections: number; durationSec: number; cpus?: string | undefined }): Promise<LoadResult> {
    const sec = Math.max(1, Math.round(o.durationSec));
    const p = sup.start('wrk', this.#bin, ['-t1', `-c${o.connections}`, `-d${sec}s`, '--timeout', '10s', '-s', this.#script, o.url], { cpus: o.cpus, quiet: true });
    const exit = await p.exited;
    if (exit.code !== 0) throw new Error(`wrk exited with ${exit.code ?? exit.signal}: ${p.output.slice(-1000)}`);
    return parseWrkOutput(p.stdout);
  }
}
