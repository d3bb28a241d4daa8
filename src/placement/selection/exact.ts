import { FIT_GRID, NodeState, Summary } from '../../table/layout.js';
import { SummaryAccumulator, cpuLevel, loadUnits, memLevel, recip, shareUnits, summaryExact } from '../../table/summary.js';
import type { TableView } from '../../table/view.js';
import { constraintsFit } from '../feasibility/constraints-fit.js';
import { PlacementQuery } from '../query.js';
import { score } from '../scoring/index.js';
import { GPU_NODE_PENALTY, Policy } from '../scoring/policy.js';
import { meanAfterUnits } from '../scoring/utilization.js';
import { Reason } from '../status.js';
import { ShardBounds } from './bounds.js';
import type { Candidates } from './candidates.js';
import { ShardMatches, hasAttributeTests } from './shard-matches.js';

/**
 * Exact: the best score over every feasible row, found by best-first branch and bound over shards
 * instead of a full scan.
 *  1. Every shard whose summary admits the task gets an upper bound on its best score (bounds.ts:
 *     free maxima and the fit grid must admit it), reused from the previous task when it asked the
 *     same and the shard has not moved since.
 *  2. Shards are visited in decreasing bound (a binary heap, built in linear time), so the first
 *     shard read usually holds the winner, and the search stops at the first shard whose bound
 *     cannot beat the best found so far: every shard after it is no better. Equal bounds are
 *     visited in rank order: this thread's own shards first, each group cyclically from
 *     `startShard`, so parallel threads break ties towards different rows and rarely collide.
 *     A task with attribute constraints skips shards with no row that passes them (shard-matches.ts).
 *  3. A shard that is read is read whole. If its summary is not exact any more (a commit or a
 *     release moved it), it is recomputed in the same pass (the values are in registers anyway),
 *     so bounds tighten as a side effect of placement; if it is exact, the pass only queries.
 * Rows score exactly as the scorers (scoring/) score them, so the chosen score and the tie-break
 * are those of a brute-force scan in rank order.
 */
export class ExactSelector {
  private readonly acc = new SummaryAccumulator();
  private readonly bounds = new ShardBounds();
  private readonly matches = new ShardMatches();
  /** Rows read by the last select (for benchmarks: how much the bounds saved). */
  rowsRead = 0;
  /** Shards read by the last select. */
  shardsRead = 0;
  // Candidate shards in rank order, their bounds, and a max-heap of their indexes.
  private shard = new Int32Array(0);
  private bound = new Float64Array(0);
  private heap = new Int32Array(0);
  // Per shard, the bound computed for the last task and the EPOCH and FIT_EPOCH it was computed
  // at. A job's instances ask the same question in a row, and between two of them only the shards
  // that were written (EPOCH) or recomputed (FIT_EPOCH) can have a different bound; for the rest
  // the last bound stands (summaries only tighten without moving EPOCH, so it errs permissive).
  private seenEpoch = new Int32Array(0);
  private seenFit = new Int32Array(0);
  private seenBound = new Float64Array(0);
  private seenShards = 0;
  /** The last task's amounts and policy (constraints do not enter a shard's bound). */
  private readonly last = new PlacementQuery();

  select(v: TableView, q: PlacementQuery, c: Candidates, rowLimit: number, startShard: number, ownIndex = 0, ownCount = 1): void {
    const shards = v.shardCount(rowLimit);
    this.rowsRead = 0;
    this.shardsRead = 0;
    if (shards === 0) return;
    if (this.shard.length < shards) this.grow(shards);
    const start = startShard >= 0 && startShard < shards ? startShard : 0;
    const ids = this.shard;
    const bnd = this.bound;
    const heap = this.heap;
    const bounds = this.bounds;
    bounds.begin(q);
    const reuse = this.sameTask(q, shards);
    const seenEpoch = this.seenEpoch;
    const seenFit = this.seenFit;
    const seenBound = this.seenBound;
    const sum = v.summary;
    let n = 0;
    // Own shards first, then the others, each cyclically from the start: the rank is the index.
    for (let pass = 0; pass < 2; pass++) {
      const own = pass === 0;
      for (let i = 0; i < shards; i++) {
        let s = start + i;
        if (s >= shards) s -= shards;
        if (ownCount > 1 && s % ownCount === ownIndex) {
          if (!own) continue;
        } else if (own && ownCount > 1) continue;
        const epoch = sum[s * Summary.STRIDE + Summary.EPOCH]!;
        const fit = sum[s * Summary.STRIDE + Summary.FIT_EPOCH]!;
        let b: number;
        if (reuse && seenEpoch[s] === epoch && seenFit[s] === fit) {
          b = seenBound[s]!;
        } else {
          const fitLoad = bounds.fitLoad(v, s);
          b = fitLoad < 0 ? -Infinity : bounds.bound(v, s, fitLoad);
          seenEpoch[s] = epoch;
          seenFit[s] = fit;
          seenBound[s] = b;
        }
        if (b === -Infinity) continue;
        ids[n] = s;
        bnd[n] = b;
        heap[n] = n;
        n++;
      }
      if (ownCount <= 1) break;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i, n);
    const cset = q.cset;
    const pinned = cset !== null && hasAttributeTests(cset);
    while (n > 0) {
      const top = heap[0]!;
      if (c.bestRow >= 0 && bnd[top]! <= c.bestScore) break;
      n--;
      if (n > 0) {
        heap[0] = heap[n]!;
        this.siftDown(0, n);
      }
      const shard = ids[top]!;
      if (pinned && !this.matches.any(v, cset, shard, rowLimit)) continue;
      this.scanShard(v, q, c, shard, rowLimit);
    }
  }

  private grow(shards: number): void {
    const n = Math.max(shards, this.shard.length * 2, 64);
    this.shard = new Int32Array(n);
    this.bound = new Float64Array(n);
    this.heap = new Int32Array(n);
    this.seenEpoch = new Int32Array(n);
    this.seenFit = new Int32Array(n);
    this.seenBound = new Float64Array(n);
    this.seenShards = 0;
  }

  /** True when `q` asks what the last select asked, over as many shards: its bounds may be reused. */
  private sameTask(q: PlacementQuery, shards: number): boolean {
    const same = this.seenShards === shards && this.last.sameShape(q);
    this.seenShards = shards;
    this.last.set(q.cpu, q.mem, q.disk, q.gpu, q.ports, q.policy, null, null);
    return same;
  }

  /** Max-heap on (bound desc, rank asc). */
  private siftDown(i: number, n: number): void {
    const heap = this.heap;
    const bnd = this.bound;
    const item = heap[i]!;
    const b = bnd[item]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let cItem = heap[child]!;
      let cb = bnd[cItem]!;
      const right = child + 1;
      if (right < n) {
        const rItem = heap[right]!;
        const rb = bnd[rItem]!;
        if (rb > cb || (rb === cb && rItem < cItem)) {
          child = right;
          cItem = rItem;
          cb = rb;
        }
      }
      if (cb > b || (cb === b && cItem < item)) {
        heap[i] = cItem;
        i = child;
      } else break;
    }
    heap[i] = item;
  }

  /**
   * Reads a shard for one task. A shard whose summary is exact (FIT_EPOCH === EPOCH + 1: recomputed
   * and not moved since) only needs the query; any other is recomputed on the way, which is what
   * keeps bounds tight after commits and releases.
   */
  private scanShard(v: TableView, q: PlacementQuery, c: Candidates, shard: number, rowLimit: number): void {
    const lo = shard * v.shardSize;
    const hi = lo + v.shardSize < rowLimit ? lo + v.shardSize : rowLimit;
    this.rowsRead += hi - lo;
    this.shardsRead++;
    if (summaryExact(v, shard)) {
      this.scan(v, q, c, lo, hi, false);
    } else {
      this.acc.begin(v, shard);
      this.scan(v, q, c, lo, hi, true);
      this.acc.store(v, shard);
    }
  }

  /**
   * Offers the rows of [lo, hi) that fit and beat the best; with `summarise`, also accumulates the
   * shard's exact summary into this.acc from the values already in hand (the caller begins and
   * stores it). Binpack and spread rows are scored inline from the same integers the scorers use
   * (meanAfterUnits of loadUnits and shareUnits), with the reciprocals and the request's share
   * computed once per distinct capacity (a shard is one machine class, so usually once): no
   * division in the loop, and nothing for rows that do not fit. One loop for both cases: the
   * `summarise` branches are loop-invariant, so they cost the query-only pass nothing measurable.
   */
  private scan(v: TableView, q: PlacementQuery, c: Candidates, lo: number, hi: number, summarise: boolean): void {
    const { version, state, capCpu, usedCpu, capMem, usedMem, capDisk, usedDisk, capGpu, usedGpu, portsFree } = v;
    const cpu = q.cpu;
    const mem = q.mem;
    const disk = q.disk;
    const gpu = q.gpu;
    const ports = q.ports;
    const policy = q.policy;
    const inline = policy === Policy.BINPACK || policy === Policy.SPREAD;
    const spread = policy === Policy.SPREAD;
    const penalise = gpu === 0;
    const up = NodeState.UP;
    const acc = this.acc;
    const grid = acc.grid;
    const topC = acc.topCpu;
    const topM = acc.topMem;
    let best = c.bestScore;
    let misses = 0;
    let rows = 0;
    let fCpu = 0;
    let fMem = 0;
    let fDisk = 0;
    let fGpu = 0;
    let fPorts = 0;
    let maxLoad = 0;
    let minLoad = 0x7fffffff;
    let minCc = 0x7fffffff;
    let maxCc = 0;
    let minCm = 0x7fffffff;
    let maxCm = 0;
    let minCg = 0x7fffffff;
    let lastCc = -1;
    let lastCm = -1;
    let rc = 0;
    let rm = 0;
    let share = 0;
    for (let row = lo; row < hi; row++) {
      // Plain reads (an atomic load per row would cost a third of the loop): a row that becomes the
      // best is re-checked against an atomic read of its version in offerBest, and tryCommit
      // re-checks the fit under the row lock whatever was read here.
      const ver = version[row]!;
      if (state[row] !== up) continue;
      // A row mid-write takes no placement, but still counts towards the summary.
      const busy = (ver & 1) !== 0;
      if (busy && !summarise) continue;
      const cc = capCpu[row]!;
      const uc = usedCpu[row]!;
      const cm = capMem[row]!;
      const um = usedMem[row]!;
      const cg = capGpu[row]!;
      const freeC = cc - uc;
      const freeM = cm - um;
      const freeD = capDisk[row]! - usedDisk[row]!;
      const freeG = cg - usedGpu[row]!;
      const freeP = portsFree[row]!;
      const fits = freeC >= cpu && freeM >= mem && freeD >= disk && freeG >= gpu && freeP >= ports;
      if ((summarise || (fits && inline)) && (cc !== lastCc || cm !== lastCm)) {
        if (cc < minCc) minCc = cc;
        if (cc > maxCc) maxCc = cc;
        if (cm < minCm) minCm = cm;
        if (cm > maxCm) maxCm = cm;
        lastCc = cc;
        lastCm = cm;
        rc = recip(cc);
        rm = recip(cm);
        share = shareUnits(cpu, rc, mem, rm);
      }
      let load = 0;
      if (summarise) {
        rows++;
        if (freeC > fCpu) fCpu = freeC;
        if (freeM > fMem) fMem = freeM;
        if (freeD > fDisk) fDisk = freeD;
        if (freeG > fGpu) fGpu = freeG;
        if (freeP > fPorts) fPorts = freeP;
        if (cg < minCg) minCg = cg;
        load = loadUnits(uc, cc, rc, um, cm, rm);
        if (load > maxLoad) maxLoad = load;
        if (load < minLoad) minLoad = load;
        const lc = cpuLevel(freeC);
        const lm = memLevel(freeM);
        const cell = lc * FIT_GRID + lm;
        if (load > grid[cell]!) grid[cell] = load;
        if (freeC > topC[lc]!) topC[lc] = freeC;
        if (freeM > topM[lm]!) topM[lm] = freeM;
        if (busy) continue;
      }
      if (!fits) {
        misses++;
        continue;
      }
      let sc: number;
      if (inline) {
        // Exactly binpackScore / spreadScore (scoring/), from the values already in hand.
        const mean = meanAfterUnits(summarise ? load : loadUnits(uc, cc, rc, um, cm, rm), share);
        sc = spread ? 1 - mean : mean;
        if (penalise && cg > 0) sc -= GPU_NODE_PENALTY;
      } else {
        sc = score(policy, v, row, cpu, mem, gpu);
      }
      // Ties keep the earlier row (Candidates.consider): rank order is the tie-break.
      if (sc > best && this.offerBest(v, q, c, row, ver, sc)) best = sc;
    }
    c.resourceMisses += misses;
    if (!summarise) return;
    acc.up = rows;
    acc.freeCpu = fCpu;
    acc.freeMem = fMem;
    acc.freeDisk = fDisk;
    acc.freeGpu = fGpu;
    acc.freePorts = fPorts;
    acc.maxLoad = maxLoad;
    acc.minLoad = minLoad;
    acc.minCapCpu = minCc;
    acc.maxCapCpu = maxCc;
    acc.minCapMem = minCm;
    acc.maxCapMem = maxCm;
    acc.minCapGpu = minCg;
  }

  /** Constraints (the costly check, so last), then the version, then the row is the new best. */
  private offerBest(v: TableView, q: PlacementQuery, c: Candidates, row: number, ver: number, sc: number): boolean {
    if (q.cset !== null && constraintsFit(v, row, q.cset, q.job) !== Reason.NONE) return false;
    if (Atomics.load(v.version, row) !== ver) return false; // a writer moved it while we read: in flight
    c.consider(row, ver, sc);
    return true;
  }
}
