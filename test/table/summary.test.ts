import { describe, expect, it } from 'vitest';
import { CommitResult, releaseRow, tryCommit } from '../../src/table/commit.js';
import { FIT_GRID, NodeState, Summary, UTIL_ONE } from '../../src/table/layout.js';
import { NodeTable } from '../../src/table/node-table.js';
import {
  SummaryAccumulator,
  cpuLevel,
  invalidateSummary,
  memLevel,
  onFreed,
  recomputeSummary,
  rowLoadUnits,
  shardMayFit,
} from '../../src/table/summary.js';
import type { TableView } from '../../src/table/view.js';
import { node } from './helpers.js';

const NO_PORTS = new Int32Array(0);
const BIG = 0x7fffffff;
const LOAD_EPS = 1e-6;

/** A table of `n` identical 4-cpu, 8 GiB nodes (ports 31000-31009) with small shards. */
function table(n: number, shardSize = 4): { t: NodeTable; v: TableView; rows: number[] } {
  const t = new NodeTable({ shardSize, maxNodes: 1024 });
  const rows: number[] = [];
  for (let i = 0; i < n; i++) rows.push(t.addNode(node(`n${i}`)));
  return { t, v: t.view, rows };
}

const shardOf = (v: TableView, row: number): number => (row / v.shardSize) | 0;

function fill(v: TableView, row: number): void {
  const r = tryCommit(v, row, Atomics.load(v.version, row), v.capCpu[row]! - v.usedCpu[row]!, 0, 0, 0, 0, NO_PORTS, 0);
  expect(r).toBe(CommitResult.OK);
}

describe('shardMayFit', () => {
  it('admits what a joined node can hold and refuses what no node of the shard can', () => {
    const { v, rows } = table(4);
    const s = shardOf(v, rows[0]!);
    expect(rows.every((r) => shardOf(v, r) === s)).toBe(true);
    expect(shardMayFit(v, s, 4000, 8192, 102_400, 0, 10)).toBe(true);
    expect(shardMayFit(v, s, 4001, 0, 0, 0, 0)).toBe(false);
    expect(shardMayFit(v, s, 0, 8193, 0, 0, 0)).toBe(false);
    expect(shardMayFit(v, s, 0, 0, 0, 1, 0)).toBe(false);
    expect(shardMayFit(v, s, 0, 0, 0, 0, 11)).toBe(false);
  });

  it('is false for a full shard after recompute, and true again after a release', () => {
    const { v, rows } = table(4);
    const s = shardOf(v, rows[0]!);
    for (const r of rows) fill(v, r);
    recomputeSummary(v, s, v.rowLimit());
    expect(shardMayFit(v, s, 1, 0, 0, 0, 0)).toBe(false);
    // Other dimensions are still free: only the cpu bound closed.
    expect(shardMayFit(v, s, 0, 8192, 0, 0, 0)).toBe(true);
    releaseRow(v, rows[2]!, 1500, 0, 0, 0, []);
    expect(shardMayFit(v, s, 1500, 0, 0, 0, 0)).toBe(true);
    expect(shardMayFit(v, s, 1501, 0, 0, 0, 0)).toBe(false);
    // A recompute keeps it open: the freed cpu is real.
    recomputeSummary(v, s, v.rowLimit());
    expect(shardMayFit(v, s, 1500, 0, 0, 0, 0)).toBe(true);
    expect(shardMayFit(v, s, 1501, 0, 0, 0, 0)).toBe(false);
  });

  it('is false for a shard whose rows are all drained, after recompute; true once one is back up', () => {
    const { t, v, rows } = table(4);
    const s = shardOf(v, rows[0]!);
    for (let i = 0; i < 4; i++) t.setState(`n${i}`, NodeState.DRAINING);
    recomputeSummary(v, s, v.rowLimit());
    expect(shardMayFit(v, s, 1, 0, 0, 0, 0)).toBe(false);
    t.setState('n3', NodeState.UP);
    expect(shardMayFit(v, s, 4000, 0, 0, 0, 0)).toBe(true);
  });

  it('becomes permissive after invalidateSummary, for any request', () => {
    const { v, rows } = table(4);
    const s = shardOf(v, rows[0]!);
    for (const r of rows) fill(v, r);
    recomputeSummary(v, s, v.rowLimit());
    expect(shardMayFit(v, s, 1, 0, 0, 0, 0)).toBe(false);
    invalidateSummary(v, s);
    expect(shardMayFit(v, s, 1, 0, 0, 0, 0)).toBe(true);
    expect(shardMayFit(v, s, BIG, BIG, BIG, BIG, BIG)).toBe(true);
    // The next recompute tightens it again.
    recomputeSummary(v, s, v.rowLimit());
    expect(shardMayFit(v, s, 1, 0, 0, 0, 0)).toBe(false);
  });

  it('keeps shards apart: filling one shard does not close another', () => {
    const { v, rows } = table(8);
    const shards = new Set(rows.map((r) => shardOf(v, r)));
    expect(shards.size).toBe(2);
    const [a, b] = [...shards];
    for (const r of rows) if (shardOf(v, r) === a) fill(v, r);
    recomputeSummary(v, a!, v.rowLimit());
    recomputeSummary(v, b!, v.rowLimit());
    expect(shardMayFit(v, a!, 1, 0, 0, 0, 0)).toBe(false);
    expect(shardMayFit(v, b!, 4000, 0, 0, 0, 0)).toBe(true);
  });
});

describe('recompute and the EPOCH protocol', () => {
  it('a recompute that raced with a release widens the shard instead of storing stale bounds', () => {
    const { v, rows } = table(4);
    const s = shardOf(v, rows[0]!);
    for (const r of rows) fill(v, r);
    recomputeSummary(v, s, v.rowLimit());
    // A scan reads every row (all full) ...
    const acc = new SummaryAccumulator();
    acc.begin(v, s);
    for (const r of rows) {
      acc.add(v.capCpu[r]!, v.usedCpu[r]!, v.capMem[r]!, v.usedMem[r]!, v.capDisk[r]! - v.usedDisk[r]!, v.capGpu[r]!, v.usedGpu[r]!, v.portsFree[r]!);
    }
    // ... while another thread releases on a row it has already read.
    releaseRow(v, rows[0]!, 4000, 0, 0, 0, []);
    acc.store(v, s);
    // Storing "all full" would hide the free row; the protocol must leave the shard admitting it.
    expect(shardMayFit(v, s, 4000, 0, 0, 0, 0)).toBe(true);
  });

  it('a recompute with no concurrent writer stores exact bounds', () => {
    const { v, rows } = table(4);
    const s = shardOf(v, rows[0]!);
    invalidateSummary(v, s);
    tryCommit(v, rows[1]!, Atomics.load(v.version, rows[1]!), 1000, 2048, 0, 0, 0, NO_PORTS, 0);
    recomputeSummary(v, s, v.rowLimit());
    const b = s * Summary.STRIDE;
    expect(v.summary[b + Summary.MAX_FREE_CPU]).toBe(4000);
    expect(v.summary[b + Summary.MAX_FREE_MEM]).toBe(8192);
    expect(v.summary[b + Summary.MAX_FREE_GPU]).toBe(0);
    expect(v.summary[b + Summary.MAX_FREE_PORTS]).toBe(10);
    expect(v.summary[b + Summary.UP_ROWS]).toBe(4);
  });

  it('onFreed bumps EPOCH', () => {
    const { v, rows } = table(1);
    const s = shardOf(v, rows[0]!);
    const e = Atomics.load(v.summary, s * Summary.STRIDE + Summary.EPOCH);
    onFreed(v, rows[0]!);
    expect(Atomics.load(v.summary, s * Summary.STRIDE + Summary.EPOCH)).not.toBe(e);
  });
});

/** Exact values over the UP rows of a shard, computed the slow way. */
function exact(v: TableView, shard: number, rowLimit: number) {
  const e = {
    up: 0,
    free: [0, 0, 0, 0, 0],
    maxLoad: 0,
    minLoad: Infinity,
    minCapCpu: Infinity,
    minCapMem: Infinity,
    maxCapCpu: 0,
    maxCapMem: 0,
    minCapGpu: Infinity,
  };
  for (let r = shard * v.shardSize; r < Math.min((shard + 1) * v.shardSize, rowLimit); r++) {
    if (v.state[r] !== NodeState.UP) continue;
    e.up++;
    const free = [v.capCpu[r]! - v.usedCpu[r]!, v.capMem[r]! - v.usedMem[r]!, v.capDisk[r]! - v.usedDisk[r]!, v.capGpu[r]! - v.usedGpu[r]!, v.portsFree[r]!];
    free.forEach((f, d) => (e.free[d] = Math.max(e.free[d]!, f)));
    const uc = v.capCpu[r]! > 0 ? v.usedCpu[r]! / v.capCpu[r]! : 1;
    const um = v.capMem[r]! > 0 ? v.usedMem[r]! / v.capMem[r]! : 1;
    e.maxLoad = Math.max(e.maxLoad, uc + um);
    e.minLoad = Math.min(e.minLoad, uc + um);
    e.minCapCpu = Math.min(e.minCapCpu, v.capCpu[r]!);
    e.minCapMem = Math.min(e.minCapMem, v.capMem[r]!);
    e.maxCapCpu = Math.max(e.maxCapCpu, v.capCpu[r]!);
    e.maxCapMem = Math.max(e.maxCapMem, v.capMem[r]!);
    e.minCapGpu = Math.min(e.minCapGpu, v.capGpu[r]!);
  }
  return e;
}

function checkPermissive(v: TableView, rowLimit: number, when: string): void {
  for (let s = 0; s < v.shardCount(rowLimit); s++) {
    const e = exact(v, s, rowLimit);
    const b = s * Summary.STRIDE;
    const sum = v.summary;
    const fail = (what: string): never => {
      throw new Error(`${when}: shard ${s} ${what} is tighter than the rows (exact ${JSON.stringify(e)})`);
    };
    // Consumers only test UP_ROWS against 0 (movers raise it to 1, not to the count).
    if (e.up > 0 && sum[b + Summary.UP_ROWS]! <= 0) fail('UP_ROWS');
    const slots = [Summary.MAX_FREE_CPU, Summary.MAX_FREE_MEM, Summary.MAX_FREE_DISK, Summary.MAX_FREE_GPU, Summary.MAX_FREE_PORTS];
    slots.forEach((slot, d) => {
      if (e.up > 0 && sum[b + slot]! < e.free[d]!) fail(`MAX_FREE dim ${d}`);
    });
    if (e.up === 0) continue;
    // Loads are stored in UTIL_ONE fixed point; allow its rounding, not a missed move.
    if (sum[b + Summary.MAX_LOAD]! / UTIL_ONE < e.maxLoad - LOAD_EPS) fail('MAX_LOAD');
    if (sum[b + Summary.MIN_LOAD]! / UTIL_ONE > e.minLoad + LOAD_EPS) fail('MIN_LOAD');
    if (sum[b + Summary.MIN_CAP_CPU]! > e.minCapCpu) fail('MIN_CAP_CPU');
    if (sum[b + Summary.MIN_CAP_MEM]! > e.minCapMem) fail('MIN_CAP_MEM');
    if (sum[b + Summary.MAX_CAP_CPU]! < e.maxCapCpu) fail('MAX_CAP_CPU');
    if (sum[b + Summary.MAX_CAP_MEM]! < e.maxCapMem) fail('MAX_CAP_MEM');
    if (sum[b + Summary.MIN_CAP_GPU]! > e.minCapGpu) fail('MIN_CAP_GPU');
    // Fit slots, where readers may use them: levels while FIT_LIVE, loads too while FIT_EPOCH is current.
    const loadsExact = sum[b + Summary.FIT_EPOCH] === ((sum[b + Summary.EPOCH]! + 1) | 0);
    if (!loadsExact && sum[b + Summary.FIT_LIVE] !== 1) continue;
    for (let r = s * v.shardSize; r < Math.min((s + 1) * v.shardSize, rowLimit); r++) {
      if (v.state[r] !== NodeState.UP) continue;
      const freeC = v.capCpu[r]! - v.usedCpu[r]!;
      const freeM = v.capMem[r]! - v.usedMem[r]!;
      const lc = cpuLevel(freeC);
      const lm = memLevel(freeM);
      if (sum[b + Summary.TOP_CPU_AT + 2 * lc]! < freeC) fail(`TOP_CPU_AT level ${lc} (row ${r})`);
      if (sum[b + Summary.TOP_MEM_AT + 2 * lm]! < freeM) fail(`TOP_MEM_AT level ${lm} (row ${r})`);
      const cell = sum[b + Summary.LOAD_GRID + lc * FIT_GRID + lm]!;
      if (cell < 0) fail(`LOAD_GRID cell ${lc},${lm} says no row (row ${r})`);
      if (loadsExact && cell < rowLoadUnits(v, r)) fail(`LOAD_GRID cell ${lc},${lm} load (row ${r})`);
    }
  }
}

describe('summary bounds stay permissive', () => {
  it('through a random mix of joins, commits, releases, drains, removals and recomputes', () => {
    const t = new NodeTable({ shardSize: 8, maxNodes: 4096 });
    const v = t.view;
    let x = 2024;
    const rnd = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    const shapes = [
      { cpus: 4, mem: '8Gi', gpus: 0 },
      { cpus: 16, mem: '64Gi', gpus: 0 },
      { cpus: 8, mem: '32Gi', gpus: 2 },
    ];
    const live: string[] = [];
    const tasks: { id: string; row: number; cpu: number; mem: number; gpu: number; ports: Int32Array }[] = [];
    let next = 0;
    const join = (): void => {
      const id = `n${next++}`;
      t.addNode({ id, resources: { ...shapes[rnd(shapes.length)]!, disk: '10Gi' }, ports: '31000-31007' });
      live.push(id);
    };
    for (let i = 0; i < 40; i++) join();
    for (let step = 0; step < 3000; step++) {
      const op = rnd(100);
      if (op < 45 && live.length > 0) {
        const id = live[rnd(live.length)]!;
        const row = t.rowOf(id);
        const cpu = 100 * (1 + rnd(40));
        const mem = 256 * (1 + rnd(40));
        const gpu = rnd(4) === 0 ? 1 : 0;
        const nports = rnd(3);
        const ports = new Int32Array(nports);
        if (tryCommit(v, row, Atomics.load(v.version, row), cpu, mem, 0, gpu, nports, ports, 0) === CommitResult.OK) {
          tasks.push({ id, row, cpu, mem, gpu, ports });
        }
      } else if (op < 75 && tasks.length > 0) {
        const k = rnd(tasks.length);
        const task = tasks[k]!;
        tasks[k] = tasks[tasks.length - 1]!;
        tasks.pop();
        if (t.hasNode(task.id) && t.rowOf(task.id) === task.row) releaseRow(v, task.row, task.cpu, task.mem, 0, task.gpu, task.ports);
      } else if (op < 82 && live.length > 0) {
        const id = live[rnd(live.length)]!;
        t.setState(id, [NodeState.UP, NodeState.DRAINING, NodeState.DOWN][rnd(3)] as 1 | 2 | 3);
      } else if (op < 87 && live.length > 0) {
        const k = rnd(live.length);
        const id = live[k]!;
        live[k] = live[live.length - 1]!;
        live.pop();
        t.removeNode(id);
        for (let i = tasks.length - 1; i >= 0; i--) if (tasks[i]!.id === id) tasks.splice(i, 1);
      } else if (op < 92) {
        join();
      } else {
        const limit = v.rowLimit();
        recomputeSummary(v, rnd(v.shardCount(limit)), limit);
      }
      checkPermissive(v, v.rowLimit(), `step ${step}`);
    }
  });
});
