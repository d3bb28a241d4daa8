import { FIT_GRID, FIT_LEVELS, Summary } from '../../table/layout.js';
import { cpuLevel, memLevel, recip, shareUnits, summaryExact } from '../../table/summary.js';
import type { TableView } from '../../table/view.js';
import type { PlacementQuery } from '../query.js';
import { GPU_NODE_PENALTY, Policy } from '../scoring/policy.js';
import { meanAfterUnits } from '../scoring/utilization.js';

/** Entries of ShardBounds' share cache: 32, machine classes are few. */
const SHARE_CACHE_BITS = 5;
const SHARE_CACHE = 1 << SHARE_CACHE_BITS;

/**
 * Upper bounds on the score any feasible row of a shard could give one task, from the shard's
 * summary (table/summary.ts: every slot errs permissive). Exact selection skips shards whose bound
 * cannot beat the best found so far (branch and bound).
 * Binpack and spread score a row by meanAfterUnits(load, share) (scoring/utilization.ts), from its
 * load and the request's share of it, both integers:
 *  - binpack: load is at most MAX_LOAD, and at most LOAD_GRID at the task's cpu and mem levels
 *    (a level higher on a dimension where no row of its own level has enough free): the fullest
 *    row with room for the task, where full rows that cannot take it would make MAX_LOAD useless;
 *    the share is at most that of the shard's smallest capacities; and a row the task fits never
 *    scores above 1;
 *  - spread: 1 minus at least MIN_LOAD plus the share of the largest capacities;
 *  - balanced: no useful bound but 1.
 * The arithmetic is the scorers' own, with no slack: where a shard's capacities are all equal,
 * which is the rule since rows are grouped into shards by machine class (table/node-table.ts), the
 * bound is the score of a real row, so a shard that can only tie the best is skipped.
 * A shard made only of GPU nodes carries the GPU penalty for CPU-only work.
 * fitLoad() comes first: besides the grid's load cap, it proves that no row of a shard fits (free
 * maxima, or an empty grid cell), for any policy; the sampled fallback scan uses it too.
 *
 * One instance per selector, begun once per task: the task's levels are computed once, and its
 * share once per distinct capacity pair.
 */

export class ShardBounds {
  private cpu = 0;
  private mem = 0;
  private disk = 0;
  private gpu = 0;
  private ports = 0;
  private policy = 0;
  private levelC = 0;
  private levelM = 0;
  // The request's share by capacity pair (shareUnits costs two divisions), direct-mapped: shards
  // are visited in table order, which interleaves machine classes, so remembering only the last
  // pair would miss on most shards.
  private readonly tagCpu = new Int32Array(SHARE_CACHE);
  private readonly tagMem = new Int32Array(SHARE_CACHE);
  private readonly shares = new Int32Array(SHARE_CACHE);

  begin(q: PlacementQuery): void {
    this.cpu = q.cpu;
    this.mem = q.mem;
    this.disk = q.disk;
    this.gpu = q.gpu;
    this.ports = q.ports;
    this.policy = q.policy;
    this.levelC = cpuLevel(q.cpu);
    this.levelM = memLevel(q.mem);
    this.tagCpu.fill(-1);
  }

  /** shareUnits of the task for these capacities. */
  private share(capCpu: number, capMem: number): number {
    // Capacities are round numbers (multiples of 32 and more), so mix them before taking bits.
    const i = Math.imul(capCpu ^ Math.imul(capMem, 0x85ebca6b), 0x9e3779b1) >>> (32 - SHARE_CACHE_BITS);
    if (this.tagCpu[i] === capCpu && this.tagMem[i] === capMem) return this.shares[i]!;
    const sh = shareUnits(this.cpu, recip(capCpu), this.mem, recip(capMem));
    this.tagCpu[i] = capCpu;
    this.tagMem[i] = capMem;
    this.shares[i] = sh;
    return sh;
  }

  /**
   * For the task given to begin(): -1 when the shard's summary proves no row of it fits the task
   * (free maxima, or the fit grid), else an upper bound on the load of a row that fits it
   * (0x7fffffff when the grid's loads are retired and cannot tell; its levels may still prove a miss).
   */
  fitLoad(v: TableView, shard: number): number {
    const s = shard * Summary.STRIDE;
    const sum = v.summary;
    if (
      sum[s + Summary.UP_ROWS]! <= 0 ||
      sum[s + Summary.MAX_FREE_CPU]! < this.cpu ||
      sum[s + Summary.MAX_FREE_MEM]! < this.mem ||
      sum[s + Summary.MAX_FREE_DISK]! < this.disk ||
      sum[s + Summary.MAX_FREE_GPU]! < this.gpu ||
      sum[s + Summary.MAX_FREE_PORTS]! < this.ports
    ) {
      return -1;
    }
    // Loads exact, or only the levels (commits since the recompute), or nothing to go by.
    const exact = summaryExact(v, shard);
    if (!exact && sum[s + Summary.FIT_LIVE] !== 1) return 0x7fffffff;
    // Rows at the task's own level count only if one of them has enough free.
    const lc = sum[s + Summary.TOP_CPU_AT + 2 * this.levelC]! >= this.cpu ? this.levelC : this.levelC + 1;
    const lm = sum[s + Summary.TOP_MEM_AT + 2 * this.levelM]! >= this.mem ? this.levelM : this.levelM + 1;
    if (lc > FIT_LEVELS || lm > FIT_LEVELS) return -1;
    const load = sum[s + Summary.LOAD_GRID + lc * FIT_GRID + lm]!;
    return exact || load < 0 ? load : 0x7fffffff;
  }

  /** Upper bound on the shard's best score for the task, given its fitLoad (which must be >= 0). */
  bound(v: TableView, shard: number, fitLoad: number): number {
    const s = shard * Summary.STRIDE;
    const sum = v.summary;
    let b: number;
    if (this.policy === Policy.BINPACK) {
      const minC = sum[s + Summary.MIN_CAP_CPU]!;
      const minM = sum[s + Summary.MIN_CAP_MEM]!;
      if (minC > 0 && minM > 0) {
        const maxLoad = sum[s + Summary.MAX_LOAD]!;
        b = meanAfterUnits(fitLoad < maxLoad ? fitLoad : maxLoad, this.share(minC, minM));
        if (b > 1) b = 1;
      } else {
        // A row without capacity has no reciprocal to bound its share by: no bound.
        b = 1;
      }
    } else if (this.policy === Policy.SPREAD) {
      b = 1 - meanAfterUnits(sum[s + Summary.MIN_LOAD]!, this.share(sum[s + Summary.MAX_CAP_CPU]!, sum[s + Summary.MAX_CAP_MEM]!));
    } else {
      b = 1;
    }
    if (this.gpu === 0 && sum[s + Summary.MIN_CAP_GPU]! > 0) b -= GPU_NODE_PENALTY;
    return b;
  }
}

const one = new ShardBounds();

/** The bound of a single shard, -Infinity when it fits no row (tests, diagnostics). */
export function shardUpperBound(v: TableView, shard: number, q: PlacementQuery): number {
  one.begin(q);
  const fitLoad = one.fitLoad(v, shard);
  return fitLoad < 0 ? -Infinity : one.bound(v, shard, fitLoad);
}
