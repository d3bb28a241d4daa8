/**
 * Names for every slot of the shared node table. The table is a set of growable SharedArrayBuffers,
 * one per column, so a column grows in place (no copy, no pause) when agents join; readers keep
 * fixed-length views and refresh them when the header's capacity word changes.
 */

/** Row states. Only UP rows take new placements; DRAINING keeps its tasks; EMPTY rows are free for reuse. */
export const NodeState = { EMPTY: 0, UP: 1, DRAINING: 2, DOWN: 3 } as const;
export type NodeStateValue = (typeof NodeState)[keyof typeof NodeState];
export const NODE_STATE_NAMES = ['empty', 'up', 'draining', 'down'] as const;

/** Slots of the header word array (Int32). */
export const Header = {
  /** Rows the column buffers currently hold (views must be rebuilt when it changes). */
  CAPACITY: 0,
  /** One past the highest row ever used: scans stop here. */
  ROW_LIMIT: 1,
  /** Bumped on every add/remove/state change, for readers that cache per-node facts. */
  TOPOLOGY_GEN: 2,
  /** Number of shards currently covering ROW_LIMIT. */
  SHARDS: 3,
  SIZE: 16,
} as const;

/** Per-shard summary slots (Int32, stride SUMMARY_STRIDE per shard). */
export const Summary = {
  /** Upper bounds on the free amount of any UP node of the shard, per dimension (see summary.ts). */
  MAX_FREE_CPU: 0,
  MAX_FREE_MEM: 1,
  MAX_FREE_DISK: 2,
  MAX_FREE_GPU: 3,
  MAX_FREE_PORTS: 4,
  /** Bumped by every release in the shard, so a concurrent recompute knows it may have missed it. */
  EPOCH: 5,
  /** Upper bound on the number of UP rows in the shard (0 lets scans skip it outright). */
  UP_ROWS: 6,
  STRIDE: 8,
} as const;

export interface TableLimits {
  /** Hard ceiling on rows; buffers reserve (virtually) this much and grow into it. */
  maxNodes: number;
  /** Attribute key slots per node. */
  maxAttrKeys: number;
  /** Widest port span (highest minus lowest port + 1) a node may offer; one bit per port. */
  maxPortSpan: number;
  /** Rows per shard: the unit of ownership for workers and of summaries for pruning. */
  shardSize: number;
}

export const DEFAULT_LIMITS: TableLimits = {
  maxNodes: 1 << 20,
  maxAttrKeys: 16,
  // 1024 bits covers Mesos' default 31000-32000 range in 32 words (128 B a node).
  maxPortSpan: 1024,
  // 256 rows: summaries cost 1/256 of a scan, and a stale shard is cheap to recompute.
  shardSize: 256,
};

/** Rows added at a time when the table grows: amortises grow() and view rebuilds. */
export const GROW_STEP_MIN = 1024;

export function portWordsFor(maxPortSpan: number): number {
  return Math.ceil(maxPortSpan / 32);
}

/** Bytes one row costs across every column, for the memory budget and for tests. */
export function bytesPerRow(limits: TableLimits): number {
  const int32Columns = 2 /* version, state */ + 4 /* cap */ + 4 /* used */ + 3 /* port base, span, free */;
  return int32Columns * 4 + limits.maxAttrKeys * 4 + portWordsFor(limits.maxPortSpan) * 4;
}
