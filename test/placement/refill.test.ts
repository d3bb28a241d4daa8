import { describe, expect, it } from 'vitest';
import { PlacementQuery } from '../../src/placement/query.js';
import { score } from '../../src/placement/scoring/index.js';
import { Policy } from '../../src/placement/scoring/policy.js';
import { Placer, Selection } from '../../src/placement/stack.js';
import { Status } from '../../src/placement/status.js';
import { chargeRow, fitsRow, tryCommit } from '../../src/table/commit.js';
import { Header } from '../../src/table/layout.js';
import { NodeTable } from '../../src/table/node-table.js';
import type { TableView } from '../../src/table/view.js';

/**
 * Exact binpack commits a request equal to the last one to the row it just filled, without a search
 * (Placer.refill). These are the ways the table can change behind that row's back without the placer
 * committing or anything being freed; after each, the next placement must be a brute-force best again.
 */

/** Rows with the best binpack score for `q` right now, by brute force. */
function bestRows(v: TableView, q: PlacementQuery): number[] {
  let best = -Infinity;
  let rows: number[] = [];
  for (let r = 0; r < v.rowLimit(); r++) {
    if (!fitsRow(v, r, q.cpu, q.mem, q.disk, q.gpu, q.ports)) continue;
    const s = score(q.policy, v, r, q.cpu, q.mem, q.gpu);
    if (s > best) {
      best = s;
      rows = [r];
    } else if (s === best) rows.push(r);
  }
  return rows;
}

function table(n: number): NodeTable {
  const t = new NodeTable({ shardSize: 4, maxNodes: 64 });
  for (let i = 0; i < n; i++) t.addNode({ id: `n${i}`, resources: { cpus: 16, mem: '64Gi' } });
  return t;
}

const out = new Int32Array(4);

/** Eight equal nodes and an exact placer that has placed one 1-cpu task (on n0, the first in rank). */
function placedOnce(): { t: NodeTable; v: TableView; p: Placer; q: PlacementQuery } {
  const t = table(8);
  const p = new Placer(t.view, { selection: Selection.EXACT, sampleK: 2, seed: 1 });
  const q = new PlacementQuery().set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null);
  expect(p.place(q, out, 0)).toBe(Status.OK);
  return { t, v: t.view, p, q };
}

describe('exact binpack refill', () => {
  it('refills the row it last filled while nothing else changed', () => {
    const { t, p, q } = placedOnce();
    const first = p.row;
    for (let i = 0; i < 5; i++) {
      expect(bestRows(t.view, q)).toEqual([first]);
      expect(p.place(q, out, 0)).toBe(Status.OK);
      expect(p.row).toBe(first);
    }
    expect(p.refills).toBe(5);
  });

  it('searches again after a task is adopted onto another row (it may now be fuller)', () => {
    const { t, v, p, q } = placedOnce();
    const other = t.rowOf('n5');
    chargeRow(v, other, 8000, 32768, 0, 0, []); // what Allocator.adopt does
    expect(bestRows(v, q)).toEqual([other]);
    expect(p.place(q, out, 0)).toBe(Status.OK);
    expect(p.row).toBe(other);
  });

  it('searches again at a new round (another thread may have filled a row further in the last one)', () => {
    const { t, v, p, q } = placedOnce();
    const other = t.rowOf('n5');
    // Another thread's commits: no generation moves.
    for (let i = 0; i < 3; i++) expect(tryCommit(v, other, Atomics.load(v.version, other), 2000, 4096, 0, 0, 0, out, 0)).toBe(0);
    p.setOwnership(0, 1); // the placement thread does this at every round
    expect(bestRows(v, q)).toEqual([other]);
    expect(p.place(q, out, 0)).toBe(Status.OK);
    expect(p.row).toBe(other);
  });

  it('keeps the tie-break of a search for a request that adds no cpu or mem to a row it does not own', () => {
    const t = new NodeTable({ shardSize: 4, maxNodes: 64 });
    // Shards 1 and 3 (rows 4-7, 12-15) have disk; this thread owns shards 0 and 2.
    for (let i = 0; i < 16; i++) t.addNode({ id: `n${i}`, resources: { cpus: 16, mem: '64Gi', disk: ((i / 4) | 0) % 2 === 1 ? '100Gi' : 0 } });
    const v = t.view;
    const p = new Placer(v, { selection: Selection.EXACT, sampleK: 2, seed: 1 });
    p.setOwnership(0, 2);
    chargeRow(v, 8, 1000, 1024, 0, 0, []);
    expect(p.place(new PlacementQuery().set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    expect(p.row).toBe(8); // the fullest row, in owned shard 2: the next search starts there
    const diskOnly = new PlacementQuery().set(0, 0, 1024, 0, 0, Policy.BINPACK, null, null);
    expect(p.place(diskOnly, out, 0)).toBe(Status.OK);
    const again = (): number => {
      expect(p.place(diskOnly, out, 0)).toBe(Status.OK);
      return p.row;
    };
    const next = again();
    Atomics.add(v.header, Header.FREED_GEN, 1); // the same rows, but a search is forced
    expect(again()).toBe(next);
  });
});
