import { describe, expect, it } from 'vitest';
import { CommitResult, fitsRow, lockRow, releaseRow, tryCommit, unlockRow } from '../../src/table/commit.js';
import { NodeState } from '../../src/table/layout.js';
import { NodeTable } from '../../src/table/node-table.js';
import type { TableView } from '../../src/table/view.js';
import { node } from './helpers.js';

const NO_PORTS = new Int32Array(0);

/** A one-node table: 4 cpus, 8 GiB, 100 GiB disk, 2 gpus, ports 31000-31009. */
function oneNode(over: Parameters<typeof node>[1] = {}): { t: NodeTable; v: TableView; row: number } {
  const t = new NodeTable();
  const row = t.addNode(node('n', { resources: { cpus: 4, mem: '8Gi', disk: '100Gi', gpus: 2 }, ...over }));
  return { t, v: t.view, row };
}

const ver = (v: TableView, row: number): number => Atomics.load(v.version, row);

describe('tryCommit', () => {
  it('commits with the version read before, and moves the version to the next even value', () => {
    const { t, v, row } = oneNode();
    const before = ver(v, row);
    expect(before & 1).toBe(0);
    expect(tryCommit(v, row, before, 1500, 1024, 2048, 1, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    expect(ver(v, row)).toBe(before + 2);
    expect(t.snapshot('n').used).toEqual({ cpus: 1500, mem: 1024, disk: 2048, gpus: 1, ports: 0 });
  });

  it('fails with CONFLICT once another commit moved the version, changing nothing', () => {
    const { t, v, row } = oneNode();
    const planned = ver(v, row);
    expect(tryCommit(v, row, planned, 1000, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    const after = ver(v, row);
    expect(tryCommit(v, row, planned, 1000, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.CONFLICT);
    expect(ver(v, row)).toBe(after);
    expect(t.snapshot('n').used.cpus).toBe(1000);
    // Re-reading the version is the retry.
    expect(tryCommit(v, row, after, 1000, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    expect(t.snapshot('n').used.cpus).toBe(2000);
  });

  it('fails with CONFLICT on an odd (writer-held) version and while another writer holds the row', () => {
    const { v, row } = oneNode();
    const even = ver(v, row);
    expect(tryCommit(v, row, even + 1, 1, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.CONFLICT);
    expect(ver(v, row)).toBe(even);
    const held = lockRow(v, row);
    expect(held).toBe(even);
    expect(ver(v, row) & 1).toBe(1);
    expect(tryCommit(v, row, even, 1, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.CONFLICT);
    unlockRow(v, row, held);
    expect(ver(v, row)).toBe(even + 2);
    expect(v.usedCpu[row]).toBe(0);
  });

  it('fails with NO_FIT when the row no longer fits, leaving version and row unchanged', () => {
    const { t, v, row } = oneNode();
    expect(tryCommit(v, row, ver(v, row), 3000, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    const before = ver(v, row);
    const snap = t.snapshot('n');
    for (const [cpu, mem, disk, gpu, ports] of [
      [1001, 0, 0, 0, 0],
      [0, 8193, 0, 0, 0],
      [0, 0, 102_401, 0, 0],
      [0, 0, 0, 3, 0],
      [0, 0, 0, 0, 11],
    ] as const) {
      const out = new Int32Array(16).fill(-7);
      expect(tryCommit(v, row, before, cpu, mem, disk, gpu, ports, out, 0)).toBe(CommitResult.NO_FIT);
      expect(ver(v, row)).toBe(before);
      expect(out.every((p) => p === -7)).toBe(true);
    }
    expect(t.snapshot('n')).toEqual(snap);
    // The unchanged version still commits what does fit.
    expect(tryCommit(v, row, before, 1000, 8192, 102_400, 2, 10, new Int32Array(10), 0)).toBe(CommitResult.OK);
    expect(t.snapshot('n').used).toEqual({ cpus: 4000, mem: 8192, disk: 102_400, gpus: 2, ports: 10 });
  });

  it('never takes a row over capacity, however many commits are attempted', () => {
    const { t, v, row } = oneNode();
    let ok = 0;
    for (let i = 0; i < 10; i++) if (tryCommit(v, row, ver(v, row), 1000, 100, 0, 0, 0, NO_PORTS, 0) === CommitResult.OK) ok++;
    expect(ok).toBe(4);
    expect(t.snapshot('n').used.cpus).toBe(4000);
    // Mixed shapes: a pseudo-random stream of requests, checked after every attempt.
    const { t: t2, v: v2, row: r2 } = oneNode();
    let x = 99;
    for (let i = 0; i < 500; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const cpu = (x >>> 8) % 900;
      const mem = (x >>> 12) % 700;
      const gpu = (x >>> 3) % 2;
      const ports = (x >>> 5) % 3;
      const res = tryCommit(v2, r2, ver(v2, r2), cpu, mem, 0, gpu, ports, new Int32Array(ports), 0);
      expect(res === CommitResult.OK || res === CommitResult.NO_FIT).toBe(true);
      expect(v2.usedCpu[r2]).toBeLessThanOrEqual(v2.capCpu[r2]!);
      expect(v2.usedMem[r2]).toBeLessThanOrEqual(v2.capMem[r2]!);
      expect(v2.usedGpu[r2]).toBeLessThanOrEqual(v2.capGpu[r2]!);
      expect(v2.portsFree[r2]).toBeGreaterThanOrEqual(0);
    }
    expect(t2.snapshot('n').used.cpus).toBeGreaterThan(3000);
  });

  it('refuses commits on DRAINING and DOWN rows (NO_FIT), and accepts them again once UP', () => {
    const { t, v, row } = oneNode();
    for (const state of [NodeState.DRAINING, NodeState.DOWN]) {
      t.setState('n', state);
      const before = ver(v, row);
      expect(tryCommit(v, row, before, 1, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.NO_FIT);
      expect(ver(v, row)).toBe(before);
      expect(fitsRow(v, row, 1, 0, 0, 0, 0)).toBe(false);
    }
    t.setState('n', NodeState.UP);
    expect(tryCommit(v, row, ver(v, row), 1, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
  });

  it('refuses commits on a removed (EMPTY) row', () => {
    const t = new NodeTable();
    const row = t.addNode(node('a'));
    t.addNode(node('b'));
    t.removeNode('a');
    const v = t.view;
    expect(v.state[row]).toBe(NodeState.EMPTY);
    expect(tryCommit(v, row, ver(v, row), 1, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.NO_FIT);
  });

  it('keeps working when the version word wraps past 2^31', () => {
    const { v, row } = oneNode();
    Atomics.store(v.version, row, 0x7ffffffe);
    expect(tryCommit(v, row, 0x7ffffffe, 100, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    const wrapped = ver(v, row);
    expect(wrapped & 1).toBe(0);
    expect(wrapped).not.toBe(0x7ffffffe);
    expect(tryCommit(v, row, wrapped, 100, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    expect(v.usedCpu[row]).toBe(200);
  });
});

describe('ports', () => {
  it('takes free ports in order from the start of the range, each once, written at the given offset', () => {
    const { v, row } = oneNode();
    const out = new Int32Array(8).fill(-1);
    expect(tryCommit(v, row, ver(v, row), 1, 0, 0, 0, 3, out, 2)).toBe(CommitResult.OK);
    expect([...out]).toEqual([-1, -1, 31000, 31001, 31002, -1, -1, -1]);
    const out2 = new Int32Array(2);
    expect(tryCommit(v, row, ver(v, row), 1, 0, 0, 0, 2, out2, 0)).toBe(CommitResult.OK);
    expect([...out2]).toEqual([31003, 31004]);
    expect(v.portsFree[row]).toBe(5);
  });

  it('hands out every offered port exactly once, skipping gaps and crossing word boundaries', () => {
    const { v, row } = oneNode({ ports: '1000-1040,1100-1101,1090' });
    const offered = new Set<number>();
    for (let p = 1000; p <= 1040; p++) offered.add(p);
    offered.add(1090).add(1100).add(1101);
    const seen: number[] = [];
    for (;;) {
      const out = new Int32Array(3);
      const want = Math.min(3, v.portsFree[row]!);
      if (want === 0) break;
      expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, want, out, 0)).toBe(CommitResult.OK);
      seen.push(...out.subarray(0, want));
    }
    expect(seen).toEqual([...offered].sort((a, b) => a - b));
    expect(v.portsFree[row]).toBe(0);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 1, new Int32Array(1), 0)).toBe(CommitResult.NO_FIT);
  });

  it('does not hand a released port straight back: the search goes on past the last port taken, then wraps', () => {
    const { t, v, row } = oneNode();
    const out = new Int32Array(4);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 4, out, 0)).toBe(CommitResult.OK);
    expect([...out]).toEqual([31000, 31001, 31002, 31003]);
    // A restarted task gives 31001 back and asks again: it gets a fresh port, not the one it just left.
    releaseRow(v, row, 0, 0, 0, 0, [31001]);
    const one = new Int32Array(1);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 1, one, 0)).toBe(CommitResult.OK);
    expect([...one]).toEqual([31004]);
    // Take the rest of the range (31005-31009); the next search wraps to the start and finds 31001.
    const rest = new Int32Array(5);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 5, rest, 0)).toBe(CommitResult.OK);
    expect([...rest]).toEqual([31005, 31006, 31007, 31008, 31009]);
    releaseRow(v, row, 0, 0, 0, 0, [31007, 31002]);
    const again = new Int32Array(3);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 2, again, 0)).toBe(CommitResult.OK);
    expect([...again.subarray(0, 2)]).toEqual([31001, 31002]);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 1, again, 2)).toBe(CommitResult.OK);
    expect(again[2]).toBe(31007);
    expect(t.snapshot('n').used.ports).toBe(10);
    expect(v.portsFree[row]).toBe(0);
  });

  it('wraps within one request: ports after the cursor first, then those before it, across word boundaries', () => {
    const { v, row } = oneNode({ ports: '2000-2069' });
    const first = new Int32Array(40);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 40, first, 0)).toBe(CommitResult.OK);
    expect(first[39]).toBe(2039);
    releaseRow(v, row, 0, 0, 0, 0, [2003, 2031, 2032, 2035]);
    const out = new Int32Array(34);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 34, out, 0)).toBe(CommitResult.OK);
    const after = Array.from({ length: 30 }, (_, i) => 2040 + i);
    expect([...out]).toEqual([...after, 2003, 2031, 2032, 2035]);
    expect(v.portsFree[row]).toBe(0);
  });

  it('ignores a port released twice and a port the node does not offer', () => {
    const { v, row } = oneNode();
    const out = new Int32Array(3);
    expect(tryCommit(v, row, ver(v, row), 0, 0, 0, 0, 3, out, 0)).toBe(CommitResult.OK);
    releaseRow(v, row, 0, 0, 0, 0, [31001]);
    releaseRow(v, row, 0, 0, 0, 0, new Int32Array([31001, 80, 31010, 40000]));
    expect(v.portsFree[row]).toBe(8);
  });
});

describe('releaseRow', () => {
  it('restores used resources and moves the version', () => {
    const { t, v, row } = oneNode();
    const ports = new Int32Array(2);
    expect(tryCommit(v, row, ver(v, row), 1500, 2048, 4096, 2, 2, ports, 0)).toBe(CommitResult.OK);
    expect(tryCommit(v, row, ver(v, row), 500, 1024, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    const before = ver(v, row);
    releaseRow(v, row, 1500, 2048, 4096, 2, ports);
    expect(t.snapshot('n').used).toEqual({ cpus: 500, mem: 1024, disk: 0, gpus: 0, ports: 0 });
    expect(ver(v, row)).toBe(before + 2);
    releaseRow(v, row, 500, 1024, 0, 0, []);
    expect(t.snapshot('n').used).toEqual({ cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 });
    // Whole capacity is usable again.
    expect(tryCommit(v, row, ver(v, row), 4000, 8192, 102_400, 2, 10, new Int32Array(10), 0)).toBe(CommitResult.OK);
  });

  it('makes a plan made before the release conflict (the row changed)', () => {
    const { v, row } = oneNode();
    expect(tryCommit(v, row, ver(v, row), 1000, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.OK);
    const planned = ver(v, row);
    releaseRow(v, row, 1000, 0, 0, 0, []);
    expect(tryCommit(v, row, planned, 1000, 0, 0, 0, 0, NO_PORTS, 0)).toBe(CommitResult.CONFLICT);
  });
});

describe('fitsRow and the row lock', () => {
  it('fitsRow agrees with what a commit accepts', () => {
    const { v, row } = oneNode();
    expect(fitsRow(v, row, 4000, 8192, 102_400, 2, 10)).toBe(true);
    expect(fitsRow(v, row, 4001, 0, 0, 0, 0)).toBe(false);
    expect(fitsRow(v, row, 0, 8193, 0, 0, 0)).toBe(false);
    expect(fitsRow(v, row, 0, 0, 102_401, 0, 0)).toBe(false);
    expect(fitsRow(v, row, 0, 0, 0, 3, 0)).toBe(false);
    expect(fitsRow(v, row, 0, 0, 0, 0, 11)).toBe(false);
  });

  it('lockRow gives up with an error when the row stays locked', () => {
    const { v, row } = oneNode();
    const held = lockRow(v, row);
    expect(() => lockRow(v, row)).toThrow(/locked/);
    unlockRow(v, row, held);
    expect(lockRow(v, row)).toBe(held + 2);
  });
});
