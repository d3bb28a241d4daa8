import type { CompiledConstraints } from '../placement/constraints/compiled.js';
import type { TableBuffers } from '../table/buffers.js';
import type { TaskBufferData } from './task-buffer.js';

/** Given once to every worker thread. */
export interface WorkerInit {
  table: TableBuffers;
  /** Task buffers; rounds alternate between them so one can be written while another is placed. */
  tasks: TaskBufferData[];
  selection: number;
  sampleK: number;
  seed: number;
  /** Threads in the pool: rows of `latency`. */
  threads: number;
  /** Per-thread latency bucket rows (latency-counts.ts). */
  latency: SharedArrayBuffer;
  /** One Int32 a starting thread increments to claim its row. */
  rowClaims: Int32Array;
  /** Each thread's OS thread id at its row (Linux; 0 where unknown), for per-thread CPU figures. */
  threadIds: Int32Array;
}

/** A job whose constraints depend on its other instances (limit, distinct hosts). */
export interface RoundJob {
  cset: number;
  /** Rows currently holding an instance of the job, one entry per instance. */
  rows: Int32Array;
}

/** One sub-batch: place tasks [lo, hi) of the shared task buffer. */
export interface RoundRequest {
  /** Which task buffer the range is in. */
  buffer: number;
  lo: number;
  hi: number;
  /** Shard ownership for this sub-batch: shards with shard % ownerCount === ownerIndex. */
  ownerIndex: number;
  ownerCount: number;
  /** Constraint sets referenced by the range, current versions. */
  csets: CompiledConstraints[];
  jobs: RoundJob[];
}

export interface RoundResult {
  /** Time the thread spent on this sub-batch (ms), for utilisation figures. */
  busyMs: number;
  placed: number;
  unplaced: number;
  conflicts: number;
  retries: number;
}
