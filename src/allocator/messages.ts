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
  /**
   * Shard ownership, one Int32 slot per thread: a thread claims a free slot at start and owns the
   * shards with shard % slots === its slot for its whole life (ownership.ts).
   */
  owners: SharedArrayBuffer;
  /** Latency counts per ownership slot (latency-counts.ts). */
  latency: SharedArrayBuffer[];
}

/** A job whose constraints depend on its other instances (limit, distinct hosts). */
export interface RoundJob {
  cset: number;
  /** Rows currently holding an instance of the job, one entry per instance. */
  rows: Int32Array;
}

/** One round: place tasks [lo, hi) of the shared task buffer, in the thread's own shards. */
export interface RoundRequest {
  /** Which task buffer the range is in. */
  buffer: number;
  lo: number;
  hi: number;
  /** Constraint sets referenced by the range, current versions. */
  csets: CompiledConstraints[];
  jobs: RoundJob[];
}

export interface RoundResult {
  /** Time the thread spent on this round (ms), for utilisation figures. */
  busyMs: number;
  placed: number;
  unplaced: number;
  conflicts: number;
  retries: number;
}
