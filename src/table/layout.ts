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
  /** Largest capacity any node has had, per dimension (raised on join, never lowered: errs high). */
  MAX_CAP_CPU: 4,
  MAX_CAP_MEM: 5,
  MAX_CAP_DISK: 6,
  MAX_CAP_GPU: 7,
  MAX_CAP_PORTS: 8,
  /** Bumped whenever resources may have become free (release, join, reactivation): see placement/verdict-cache.ts. */
  FREED_GEN: 9,
  SIZE: 16,
} as const;

/**
 * Per-shard summary slots (Int32, stride STRIDE per shard). Each is a bound over the shard's UP rows
 * that errs on the side of "this shard may hold something good": free amounts, load maxima and
 * capacity maxima err high; load minima and capacity minima err low. Scans skip a shard whose
 * bounds prove it cannot fit a task or cannot beat the best score found so far. summary.ts owns the
 * protocol that keeps them permissive under concurrent writers.
 */
export const Summary = {
  MAX_FREE_CPU: 0,
  MAX_FREE_MEM: 1,
  MAX_FREE_DISK: 2,
  MAX_FREE_GPU: 3,
  MAX_FREE_PORTS: 4,
  /** Bumped by every write that raises or lowers a bound, so a concurrent recompute knows it may have missed it. */
  EPOCH: 5,
  /** Upper bound on the number of UP rows in the shard (0 lets scans skip it outright). */
  UP_ROWS: 6,
  /**
   * A row's load is usedCpu/capCpu + usedMem/capMem (0..2) in UTIL_ONE fixed point, computed by
   * loadUnits (summary.ts): the sum, not one slot per dimension, because every scorer works on the
   * pair and "max cpu + max mem" taken from two different rows is a loose bound. These hold the
   * max (binpack bound) and min (spread bound) over UP rows, exactly: the scorers score a row from
   * the same integer, so a bound equals the best score of its shard and ties prune.
   */
  MAX_LOAD: 7,
  MIN_LOAD: 8,
  /** Capacity extremes over UP rows: a request is the largest share of the smallest node. */
  MIN_CAP_CPU: 9,
  MIN_CAP_MEM: 10,
  MAX_CAP_CPU: 11,
  MAX_CAP_MEM: 12,
  /** Min gpu capacity over UP rows: > 0 means every row carries GPUs (penalised for CPU-only work). */
  MIN_CAP_GPU: 13,
  /**
   * EPOCH + 1 when the fit slots below are exact for the rows as they are (stored by a recompute no
   * mover raced). Movers never update those slots, they only bump EPOCH, which retires them:
   * readers use them only while FIT_EPOCH === EPOCH + 1.
   */
  FIT_EPOCH: 14,
  /**
   * 1 while the fit slots' levels still hold, even after FIT_EPOCH retired their loads: TOP_*_AT at
   * least the most free at each level and LOAD_GRID -1 only where no row is at or above. A commit
   * only lowers a row's free amounts, which keeps a -1 cell true (the row was counted at a level at
   * least as high); it raises TOP_*_AT at the levels the row falls to (onCommit). Whatever frees
   * (a release, a join, an undrain) clears it, until the next recompute. This is what lets a scan
   * in a filling cluster skip a shard whose rows all lack room for a task, when commits have
   * retired its loads: without it, every commit made the next miss read and recompute the shard.
   */
  FIT_LIVE: 15,
  /**
   * Free cpu (millicores) and free mem (MiB) each fall into a fit level 0..FIT_LEVELS (summary.ts:
   * cpuLevel, memLevel; half-octave steps). TOP_CPU_AT + 2k holds the most free cpu of a row exactly
   * at cpu level k (-1 for none), TOP_MEM_AT + 2k likewise for mem (interleaved: a task's two levels
   * are usually close, so one cache line serves both); LOAD_GRID + i * FIT_GRID + j holds the max
   * load over UP rows at cpu level i or above and mem level j or above (-1 for none). A task fits
   * only rows at or above its own two levels (and only those above, on a dimension where no row of
   * its own level has enough free), so the grid gives the binpack bound without the rows that
   * cannot take the task: the full rows, which make MAX_LOAD useless once a cluster fills, and rows
   * with room in one dimension only. -1 proves the task fits no row of the shard.
   */
  TOP_CPU_AT: 16,
  TOP_MEM_AT: 17,
  LOAD_GRID: 50,
  /**
   * A multiple of 16 words, so each shard's first 16 slots (those every selection reads) share one
   * cache line. 1,408 bytes a shard: 5.5 bytes a row at the default 256 rows a shard.
   */
  STRIDE: 352,
} as const;

/** Highest fit level (levels are 0..FIT_LEVELS). */
export const FIT_LEVELS = 16;
/** Fit levels per dimension, the side of Summary.LOAD_GRID. */
export const FIT_GRID = FIT_LEVELS + 1;

/**
 * Fixed-point 1.0 of utilisation in loads and request shares: 2^29, so a load (at most 2) and a
 * share fit an Int32 with room, and scores keep 2^-30 resolution (one millicore of a 64-core node
 * is about 8,400 units).
 */
export const UTIL_ONE = 1 << 29;

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
  const int32Columns = 2 /* version, state */ + 4 /* cap */ + 4 /* used */ + 5 /* port base, span, free, capacity, cursor */;
  return int32Columns * 4 + limits.maxAttrKeys * 4 + portWordsFor(limits.maxPortSpan) * 4;
}
