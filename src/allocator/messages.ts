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

/**
 * One sub-batch: place tasks [lo, hi) of the shared task buffer. [lo, shared) holds its job-scoped
 * tasks, placed by this request alone (their job state lives in it); [shared, hi) is claimed in
 * chunks through the buffer's claims word `sub`, by this request and by any thread that finished
 * its own part of the round, so one slow part does not leave the other threads idle.
 */
export interface RoundRequest {
  /** Which task buffer the range is in. */
  buffer: number;
  lo: number;
  shared: number;
  hi: number;
  /** This sub-batch's claims word. */
  sub: number;
  /** [shared, hi) of every sub-batch of the round, by claims word: what may be claimed once this part is done. */
  ranges: Int32Array;
  /**
   * Threads sharing the shards: each owns shards with shard % ownerCount === its own index (the row
   * it claimed at start), whichever sub-batches it runs, so two threads never sample the same shards.
   */
  ownerCount: number;
  /** Constraint sets referenced by the round (any part may be claimed), current versions. */
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
