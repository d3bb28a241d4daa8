import { describe, expect, it } from 'vitest';
import { PlacementQuery } from '../../src/placement/query.js';
import { Policy } from '../../src/placement/scoring/policy.js';
import { Placer, Selection } from '../../src/placement/stack.js';
import { Reason, Status } from '../../src/placement/status.js';
import { SharedVerdicts } from '../../src/placement/verdict-cache.js';
import { releaseRow } from '../../src/table/commit.js';
import { SHARED_VERDICTS, Verdict } from '../../src/table/layout.js';
import { NodeTable } from '../../src/table/node-table.js';

/** Four 4-cpu nodes, each with 3 cpus taken: nothing of 2 cpus fits. Two placers, as two threads. */
function full(): { t: NodeTable; a: Placer; b: Placer; q: PlacementQuery; out: Int32Array } {
  const t = new NodeTable({ shardSize: 8 });
  for (let i = 0; i < 4; i++) t.addNode({ id: `n${i}`, resources: { cpus: 4, mem: '8Gi' } });
  const a = new Placer(t.view, { selection: Selection.SAMPLED, sampleK: 2, seed: 3 });
  const b = new Placer(t.view, { selection: Selection.SAMPLED, sampleK: 2, seed: 5 });
  const q = new PlacementQuery();
  const out = new Int32Array(4);
  for (let i = 0; i < 4; i++) expect(a.place(q.set(3000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
  return { t, a, b, q, out };
}

describe('shared verdicts', () => {
  it("answer one placer with another's verdict, for any request at least as large", () => {
    const { a, b, q, out } = full();
    expect(a.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect(b.sharedVerdicts.hits).toBe(0);
    expect(b.place(q.set(2500, 2048, 0, 0, 0, Policy.SPREAD, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect(b.reason).toBe(Reason.CPU);
    expect(b.detail).toBe(a.detail);
    expect(b.sharedVerdicts.hits).toBe(1);
    // b now holds it itself: a repeat does not go back to the shared ring.
    expect(b.place(q.set(2500, 2048, 0, 0, 0, Policy.SPREAD, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect(b.sharedVerdicts.hits).toBe(1);
    // Smaller in one dimension: not covered (and it fits).
    expect(b.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
  });

  it('are forgotten when resources are freed', () => {
    const { t, a, b, q, out } = full();
    expect(a.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    releaseRow(t.view, t.rowOf('n2'), 3000, 1024, 0, 0, []);
    expect(b.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    expect(b.sharedVerdicts.hits).toBe(0);
  });

  it('ignore an entry being written (odd sequence) or never written, and take it once published', () => {
    const ring = new Int32Array(new SharedArrayBuffer((Verdict.ENTRIES + SHARED_VERDICTS * Verdict.STRIDE) * 4));
    const s = new SharedVerdicts(ring);
    const q = new PlacementQuery().set(100, 100, 0, 0, 0, Policy.BINPACK, null, null);
    const gen = 7;
    // A zeroed ring at generation 0 must not claim that everything is unplaceable.
    expect(s.lookup(q, 0)).toBe(false);
    s.insert(q, gen, Status.UNPLACEABLE, Reason.MEM, 42);
    expect(s.lookup(q, gen)).toBe(true);
    expect([s.status, s.reason, s.detail]).toEqual([Status.UNPLACEABLE, Reason.MEM, 42]);
    expect(s.lookup(q, gen + 1)).toBe(false);
    // Mark the entry as being rewritten: readers skip it until it is published again.
    const e = Verdict.ENTRIES;
    const seq = ring[e + Verdict.SEQ]!;
    ring[e + Verdict.SEQ] = seq + 1;
    expect(s.lookup(q, gen)).toBe(false);
    ring[e + Verdict.SEQ] = seq + 2;
    expect(s.lookup(q, gen)).toBe(true);
    // A writer that finds an entry held skips it rather than waiting.
    ring[Verdict.NEXT] = 0;
    ring[e + Verdict.SEQ] = seq + 3;
    s.insert(new PlacementQuery().set(1, 1, 0, 0, 0, Policy.BINPACK, null, null), gen, Status.UNPLACEABLE, Reason.CPU, 0);
    expect(ring[e + Verdict.CPU]).toBe(100);
  });

  it('are not made from a pass that saw a row fit (one another thread was writing)', () => {
    const t = new NodeTable({ shardSize: 8 });
    for (let i = 0; i < 2; i++) t.addNode({ id: `n${i}`, resources: { cpus: 4, mem: '8Gi' } });
    const a = new Placer(t.view, { selection: Selection.SAMPLED, sampleK: 2, seed: 3 });
    const b = new Placer(t.view, { selection: Selection.SAMPLED, sampleK: 2, seed: 5 });
    const q = new PlacementQuery();
    const out = new Int32Array(4);
    expect(a.place(q.set(4000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    // n1 is held by a writer (odd version): selection passes over it, yet it has room.
    const r1 = t.rowOf('n1');
    const ver = Atomics.load(t.view.version, r1);
    Atomics.store(t.view.version, r1, ver + 1);
    expect(a.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    Atomics.store(t.view.version, r1, ver);
    // Neither thread may be turned away by that pass now that the writer is done.
    expect(b.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    expect(a.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
  });
});
