import { FIT_GRID, FIT_LEVELS, Header, NodeState, Summary, UTIL_ONE } from './layout.js';
import type { TableView } from './view.js';

/**
 * Shard summaries: bounds over the UP rows of each shard that let scans skip whole shards.
 *
 * Invariant: every slot is permissive. MAX_FREE_*, UP_ROWS, MAX_LOAD and MAX_CAP_* are at least the
 * true value over the shard's UP rows; MIN_LOAD and MIN_CAP_* are at most it. A permissive bound
 * that is stale costs a scan, never a wrong answer; a bound that were too tight would hide a row.
 * (Bounds say nothing about DRAINING, DOWN or EMPTY rows, which take no placements, so a removal or
 * a drain needs no update: the set of rows bounded only shrank.)
 *
 * How it is kept, with no lock:
 *  - Movers. Every write path that can push a row past a bound moves that bound in its permissive
 *    direction only, with a compare-exchange loop (raiseTo, lowerTo): a commit can only raise
 *    MAX_LOAD (onCommit); a release can only raise MAX_FREE_* and lower MIN_LOAD (onFreed); a join
 *    or an undrain does both and widens the capacity extremes (onJoin). A mover writes the row
 *    first, then bumps EPOCH, then moves its bounds.
 *  - Recomputes. A scan that reads a whole shard computes exact bounds on the way (the exact scan,
 *    recomputeSummary) and stores them, which is the only way a bound ever tightens. The EPOCH
 *    protocol makes that safe: the recompute reads EPOCH before its first row and again after its
 *    last store. If a mover bumped it in between, the mover's row write may have come after our
 *    read of that row and its bound move before our store, which we may have overwritten; so the
 *    recompute then widens the shard to "anything" (invalidateSummary) and the next scan retries.
 *    If EPOCH did not move, every mover either bumped before our begin (so its row write, which
 *    precedes the bump, is in what we read) or bumps after our check (so its move lands on top of
 *    our store). Atomics are sequentially consistent, which orders the plain row writes too.
 *  - Fit slots. TOP_*_AT and LOAD_GRID are exact while FIT_EPOCH = EPOCH + 1 (stored by a
 *    recompute): movers do not keep the grid's loads, their EPOCH bump retires them until the next
 *    recompute (that would take a compare-exchange per level per commit). What the slots say about
 *    levels outlives commits (FIT_LIVE): a commit raises TOP_*_AT at the levels its row falls to,
 *    after its EPOCH bump like any mover; a freeing mover clears FIT_LIVE after its bump.
 *    (EPOCH wraps after 2^32 moves; a reader would need to sleep through exactly that many to be fooled.)
 *  - Exact loads. A row's load is an integer (loadUnits) that the scorers use too (scoring/), so
 *    MAX_LOAD and MIN_LOAD carry no rounding slack: a shard's bound equals its best row's score,
 *    and a shard that only ties the best found so far is skipped.
 */

/** Loads and shares are clamped below this (in units of 1.0) so their fixed point fits an Int32. */
const LOAD_CLAMP = 4;
const MAX_UNITS = 0x7fffffff;

export function raiseTo(a: Int32Array, i: number, value: number): void {
  for (;;) {
    const cur = Atomics.load(a, i);
    if (cur >= value || Atomics.compareExchange(a, i, cur, value) === cur) return;
  }
}

export function lowerTo(a: Int32Array, i: number, value: number): void {
  for (;;) {
    const cur = Atomics.load(a, i);
    if (cur <= value || Atomics.compareExchange(a, i, cur, value) === cur) return;
  }
}

/** 1/cap, the factor loads and shares are computed with (0 for no capacity). */
export function recip(cap: number): number {
  return cap > 0 ? 1 / cap : 0;
}

/**
 * A row's load, usedCpu/capCpu + usedMem/capMem, in UTIL_ONE units rounded down; a dimension
 * without capacity counts as full. `rc` and `rm` are recip(capCpu), recip(capMem): multiplying by a
 * reciprocal lets a scan compute one per machine class instead of dividing per row, and the value
 * is a fixed function of the row, so scans, movers and scorers all get the same integer.
 */
export function loadUnits(usedCpu: number, capCpu: number, rc: number, usedMem: number, capMem: number, rm: number): number {
  const l = (capCpu > 0 ? usedCpu * rc : 1) + (capMem > 0 ? usedMem * rm : 1);
  return l < LOAD_CLAMP ? (l * UTIL_ONE) | 0 : MAX_UNITS;
}

/**
 * A request's share of a row, cpu/capCpu + mem/capMem, in UTIL_ONE units rounded down. Monotone in
 * the reciprocals (so in the capacities): the share computed for the smallest capacities of a shard
 * is at least that of any of its rows, for the largest at most.
 */
export function shareUnits(cpu: number, rc: number, mem: number, rm: number): number {
  const l = cpu * rc + mem * rm;
  return l < LOAD_CLAMP ? (l * UTIL_ONE) | 0 : MAX_UNITS;
}

/**
 * Fit levels of a free amount: 0 below 2^base, then one level per half octave (2^base, 1.5 * 2^base,
 * 2^(base+1), ...), capped at FIT_LEVELS. Non-decreasing in the amount, so a row a task fits is at
 * least at the task's level. Absolute amounts, not shares, so rows of any capacity compare.
 */
function fitLevel(amount: number, base: number): number {
  if (amount < 1 << base) return 0;
  const e = 31 - Math.clz32(amount);
  const l = 2 * (e - base) + ((amount >>> (e - 1)) & 1) + 1;
  return l < FIT_LEVELS ? l : FIT_LEVELS;
}

/** Cpu levels start at 64 millicores; FIT_LEVELS half octaves reach 16 cores. */
const CPU_LEVEL_BASE = 6;
/** Mem levels start at 128 MiB and reach 32 GiB. */
const MEM_LEVEL_BASE = 7;

/** Fit level of an amount of free (or requested) cpu, in millicores. */
export function cpuLevel(millicores: number): number {
  return fitLevel(millicores, CPU_LEVEL_BASE);
}

/** Fit level of an amount of free (or requested) mem, in MiB. */
export function memLevel(mebibytes: number): number {
  return fitLevel(mebibytes, MEM_LEVEL_BASE);
}

/** A row's load from the table. */
export function rowLoadUnits(v: TableView, row: number): number {
  const cc = v.capCpu[row]!;
  const cm = v.capMem[row]!;
  return loadUnits(v.usedCpu[row]!, cc, recip(cc), v.usedMem[row]!, cm, recip(cm));
}

/** Shard of a row. */
function slotBase(v: TableView, row: number): number {
  return ((row / v.shardSize) | 0) * Summary.STRIDE;
}

/**
 * After `cpu` and `mem` were committed on `row`: MAX_LOAD can have become too low, and so can the
 * most free at the levels the row fell to (FIT_LIVE).
 */
export function onCommit(v: TableView, row: number, cpu: number, mem: number): void {
  const s = slotBase(v, row);
  const sum = v.summary;
  Atomics.add(sum, s + Summary.EPOCH, 1);
  raiseTo(sum, s + Summary.MAX_LOAD, rowLoadUnits(v, row));
  const freeC = v.capCpu[row]! - v.usedCpu[row]!;
  const freeM = v.capMem[row]! - v.usedMem[row]!;
  const lc = cpuLevel(freeC);
  const lm = memLevel(freeM);
  if (lc !== cpuLevel(freeC + cpu)) raiseTo(sum, s + Summary.TOP_CPU_AT + 2 * lc, freeC);
  if (lm !== memLevel(freeM + mem)) raiseTo(sum, s + Summary.TOP_MEM_AT + 2 * lm, freeM);
}

/** After resources were freed on `row` (a release, an undrain): free maxima up, MIN_LOAD down. */
export function onFreed(v: TableView, row: number): void {
  const s = slotBase(v, row);
  const sum = v.summary;
  Atomics.add(v.header, Header.FREED_GEN, 1);
  Atomics.add(sum, s + Summary.EPOCH, 1);
  Atomics.store(sum, s + Summary.FIT_LIVE, 0);
  raiseTo(sum, s + Summary.MAX_FREE_CPU, v.capCpu[row]! - v.usedCpu[row]!);
  raiseTo(sum, s + Summary.MAX_FREE_MEM, v.capMem[row]! - v.usedMem[row]!);
  raiseTo(sum, s + Summary.MAX_FREE_DISK, v.capDisk[row]! - v.usedDisk[row]!);
  raiseTo(sum, s + Summary.MAX_FREE_GPU, v.capGpu[row]! - v.usedGpu[row]!);
  raiseTo(sum, s + Summary.MAX_FREE_PORTS, v.portsFree[row]!);
  lowerTo(sum, s + Summary.MIN_LOAD, rowLoadUnits(v, row));
  if (v.state[row] === NodeState.UP) raiseTo(sum, s + Summary.UP_ROWS, 1);
}

/** After a node joined `row` (or came back UP): everything a release moves, plus MAX_LOAD and the capacity extremes. */
export function onJoin(v: TableView, row: number): void {
  const s = slotBase(v, row);
  const sum = v.summary;
  onFreed(v, row);
  raiseTo(sum, s + Summary.MAX_LOAD, rowLoadUnits(v, row));
  lowerTo(sum, s + Summary.MIN_CAP_CPU, v.capCpu[row]!);
  lowerTo(sum, s + Summary.MIN_CAP_MEM, v.capMem[row]!);
  raiseTo(sum, s + Summary.MAX_CAP_CPU, v.capCpu[row]!);
  raiseTo(sum, s + Summary.MAX_CAP_MEM, v.capMem[row]!);
  lowerTo(sum, s + Summary.MIN_CAP_GPU, v.capGpu[row]!);
}

/**
 * Exact summary values for one shard, accumulated by a caller that is reading every row anyway
 * (the exact scan fills the fields itself), or by recomputeSummary. Reused; no allocation.
 * begin() must come before the first row is read: it samples EPOCH (see the protocol above).
 */
export class SummaryAccumulator {
  freeCpu = 0;
  freeMem = 0;
  freeDisk = 0;
  freeGpu = 0;
  freePorts = 0;
  up = 0;
  /** Load extremes in UTIL_ONE units (loadUnits). */
  maxLoad = 0;
  minLoad = 0;
  minCapCpu = 0;
  minCapMem = 0;
  maxCapCpu = 0;
  maxCapMem = 0;
  minCapGpu = 0;
  epoch = 0;
  /** Max load per (cpu level, mem level) cell, row-major, -1 for none; store() turns it into "at or above". */
  readonly grid = new Int32Array(FIT_GRID * FIT_GRID);
  /** Most free cpu and mem of a row at each level, -1 for none. */
  readonly topCpu = new Int32Array(FIT_GRID);
  readonly topMem = new Int32Array(FIT_GRID);

  begin(v: TableView, shard: number): void {
    this.epoch = Atomics.load(v.summary, shard * Summary.STRIDE + Summary.EPOCH);
    this.freeCpu = this.freeMem = this.freeDisk = this.freeGpu = this.freePorts = 0;
    this.up = 0;
    this.maxLoad = 0;
    this.minLoad = MAX_UNITS;
    this.minCapCpu = this.minCapMem = this.minCapGpu = 0x7fffffff;
    this.maxCapCpu = this.maxCapMem = 0;
    this.grid.fill(-1);
    this.topCpu.fill(-1);
    this.topMem.fill(-1);
  }

  /** Adds one UP row, given its capacities and used amounts as already read by the caller. */
  add(capCpu: number, usedCpu: number, capMem: number, usedMem: number, freeDisk: number, capGpu: number, usedGpu: number, freePorts: number): void {
    this.up++;
    if (capCpu - usedCpu > this.freeCpu) this.freeCpu = capCpu - usedCpu;
    if (capMem - usedMem > this.freeMem) this.freeMem = capMem - usedMem;
    if (freeDisk > this.freeDisk) this.freeDisk = freeDisk;
    if (capGpu - usedGpu > this.freeGpu) this.freeGpu = capGpu - usedGpu;
    if (freePorts > this.freePorts) this.freePorts = freePorts;
    const rc = recip(capCpu);
    const rm = recip(capMem);
    const load = loadUnits(usedCpu, capCpu, rc, usedMem, capMem, rm);
    if (load > this.maxLoad) this.maxLoad = load;
    if (load < this.minLoad) this.minLoad = load;
    const freeC = capCpu - usedCpu;
    const freeM = capMem - usedMem;
    const lc = cpuLevel(freeC);
    const lm = memLevel(freeM);
    const cell = lc * FIT_GRID + lm;
    if (load > this.grid[cell]!) this.grid[cell] = load;
    if (freeC > this.topCpu[lc]!) this.topCpu[lc] = freeC;
    if (freeM > this.topMem[lm]!) this.topMem[lm] = freeM;
    if (capCpu < this.minCapCpu) this.minCapCpu = capCpu;
    if (capMem < this.minCapMem) this.minCapMem = capMem;
    if (capCpu > this.maxCapCpu) this.maxCapCpu = capCpu;
    if (capMem > this.maxCapMem) this.maxCapMem = capMem;
    if (capGpu < this.minCapGpu) this.minCapGpu = capGpu;
  }

  /**
   * Stores the values, then widens the shard if a concurrent mover slipped in meanwhile. Plain
   * stores, then the sequentially consistent store of FIT_EPOCH, which orders them before the EPOCH
   * check that follows (on x86 an xchg drains the store buffer; on ARM a release store and an
   * acquire load stay in order): a mover's raise can then only land after our values, or bump
   * EPOCH before our check.
   */
  store(v: TableView, shard: number): void {
    const s = shard * Summary.STRIDE;
    const sum = v.summary;
    const empty = this.up === 0;
    sum[s + Summary.MAX_FREE_CPU] = this.freeCpu;
    sum[s + Summary.MAX_FREE_MEM] = this.freeMem;
    sum[s + Summary.MAX_FREE_DISK] = this.freeDisk;
    sum[s + Summary.MAX_FREE_GPU] = this.freeGpu;
    sum[s + Summary.MAX_FREE_PORTS] = this.freePorts;
    sum[s + Summary.UP_ROWS] = this.up;
    sum[s + Summary.MAX_LOAD] = this.maxLoad;
    sum[s + Summary.MIN_LOAD] = empty ? 0 : this.minLoad;
    sum[s + Summary.MIN_CAP_CPU] = empty ? 0 : this.minCapCpu;
    sum[s + Summary.MIN_CAP_MEM] = empty ? 0 : this.minCapMem;
    sum[s + Summary.MAX_CAP_CPU] = this.maxCapCpu;
    sum[s + Summary.MAX_CAP_MEM] = this.maxCapMem;
    sum[s + Summary.MIN_CAP_GPU] = empty ? 0 : this.minCapGpu;
    // Max load at or above each cell: a 2-D suffix maximum, built in place from the far corner.
    const g = this.grid;
    for (let i = FIT_LEVELS; i >= 0; i--) {
      for (let j = FIT_LEVELS; j >= 0; j--) {
        const cell = i * FIT_GRID + j;
        let m = g[cell]!;
        if (i < FIT_LEVELS && g[cell + FIT_GRID]! > m) m = g[cell + FIT_GRID]!;
        if (j < FIT_LEVELS && g[cell + 1]! > m) m = g[cell + 1]!;
        g[cell] = m;
        sum[s + Summary.LOAD_GRID + cell] = m;
      }
      sum[s + Summary.TOP_CPU_AT + 2 * i] = this.topCpu[i]!;
      sum[s + Summary.TOP_MEM_AT + 2 * i] = this.topMem[i]!;
    }
    Atomics.store(sum, s + Summary.FIT_LIVE, 1);
    Atomics.store(sum, s + Summary.FIT_EPOCH, (this.epoch + 1) | 0);
    if (Atomics.load(sum, s + Summary.EPOCH) !== this.epoch) invalidateSummary(v, shard);
  }
}

const scratch = new SummaryAccumulator();

/** Recomputes a shard's bounds exactly from its rows. */
export function recomputeSummary(v: TableView, shard: number, rowLimit: number): void {
  const acc = scratch;
  acc.begin(v, shard);
  const lo = shard * v.shardSize;
  const hi = Math.min(lo + v.shardSize, rowLimit);
  for (let r = lo; r < hi; r++) {
    if (v.state[r] !== NodeState.UP) continue;
    acc.add(v.capCpu[r]!, v.usedCpu[r]!, v.capMem[r]!, v.usedMem[r]!, v.capDisk[r]! - v.usedDisk[r]!, v.capGpu[r]!, v.usedGpu[r]!, v.portsFree[r]!);
  }
  acc.store(v, shard);
}

/**
 * True when nothing moved the shard since its last recompute (FIT_EPOCH === EPOCH + 1): its bounds
 * are exact, and reading its rows again would store the same values.
 */
export function summaryExact(v: TableView, shard: number): boolean {
  const s = shard * Summary.STRIDE;
  return Atomics.load(v.summary, s + Summary.FIT_EPOCH) === ((Atomics.load(v.summary, s + Summary.EPOCH) + 1) | 0);
}

/** Sets a shard's bounds to "anything may fit, anything may score" so the next scan recomputes it. */
export function invalidateSummary(v: TableView, shard: number): void {
  const s = shard * Summary.STRIDE;
  const sum = v.summary;
  const BIG = 0x7fffffff;
  Atomics.store(sum, s + Summary.MAX_FREE_CPU, BIG);
  Atomics.store(sum, s + Summary.MAX_FREE_MEM, BIG);
  Atomics.store(sum, s + Summary.MAX_FREE_DISK, BIG);
  Atomics.store(sum, s + Summary.MAX_FREE_GPU, BIG);
  Atomics.store(sum, s + Summary.MAX_FREE_PORTS, BIG);
  Atomics.store(sum, s + Summary.UP_ROWS, BIG);
  Atomics.store(sum, s + Summary.MAX_LOAD, BIG);
  Atomics.store(sum, s + Summary.MIN_LOAD, 0);
  Atomics.store(sum, s + Summary.MIN_CAP_CPU, 0);
  Atomics.store(sum, s + Summary.MIN_CAP_MEM, 0);
  Atomics.store(sum, s + Summary.MAX_CAP_CPU, BIG);
  Atomics.store(sum, s + Summary.MAX_CAP_MEM, BIG);
  Atomics.store(sum, s + Summary.MIN_CAP_GPU, 0);
  Atomics.store(sum, s + Summary.FIT_EPOCH, 0);
  Atomics.store(sum, s + Summary.FIT_LIVE, 0);
}

/** True when the shard's bounds admit a task of this shape (false means: skip the whole shard). */
export function shardMayFit(v: TableView, shard: number, cpu: number, mem: number, disk: number, gpu: number, ports: number): boolean {
  const s = shard * Summary.STRIDE;
  const sum = v.summary;
  return (
    sum[s + Summary.UP_ROWS]! > 0 &&
    sum[s + Summary.MAX_FREE_CPU]! >= cpu &&
    sum[s + Summary.MAX_FREE_MEM]! >= mem &&
    sum[s + Summary.MAX_FREE_DISK]! >= disk &&
    sum[s + Summary.MAX_FREE_GPU]! >= gpu &&
    sum[s + Summary.MAX_FREE_PORTS]! >= ports
  );
}
