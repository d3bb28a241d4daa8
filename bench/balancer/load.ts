/**
 * The two kinds of load the benchmark applies, each behind one small interface so a phase does not
 * care which program produces it. Closed loop (saturation): wrk when installed, else our loadgen.
 * Open loop (fixed rate, latency from each request's intended send time): our loadgen — Debian has
 * no wrk2, and plain wrk's latency under a fixed rate would hide coordinated omission.
 */
import type { Supervisor } from './processes.js';
import type { LoadResult } from './wrk.js';

export interface ClosedLoop {
  /** "wrk" or "loadgen", for the output. */
  readonly name: string;
  /** Shortest run it can do (wrk counts whole seconds). */
  readonly minDurationSec: number;
  run(sup: Supervisor, o: { url: string; connections: number; durationSec: number; cpus: string | undefined }): Promise<LoadResult>;
}

export interface OpenLoop {
  readonly name: string;
  /** warmupSec: load sent first and left out of the numbers (the generator's own JIT warm-up). */
  run(sup: Supervisor, o: { url: string; rate: number; connections: number; durationSec: number; warmupSec: number; cpus: string | undefined }): Promise<LoadResult>;
}
