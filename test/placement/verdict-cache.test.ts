import { describe, expect, it } from 'vitest';
import { ConstraintCompiler } from '../../src/placement/constraints/compile.js';
import { PlacementQuery } from '../../src/placement/query.js';
import { Policy } from '../../src/placement/scoring/policy.js';
import { Placer, Selection } from '../../src/placement/stack.js';
import { Reason, Status, reasonCode, reasonNotUp } from '../../src/placement/status.js';
import { NodeState } from '../../src/table/layout.js';
import { lockRow, releaseRow, unlockRow } from '../../src/table/commit.js';
import { NodeTable } from '../../src/table/node-table.js';

function filled(): { t: NodeTable; placer: Placer; q: PlacementQuery; out: Int32Array } {
  const t = new NodeTable({ shardSize: 8 });
  for (let i = 0; i < 4; i++) t.addNode({ id: `n${i}`, resources: { cpus: 4, mem: '8Gi' }, attributes: { zone: `z${i % 2}` } });
  const placer = new Placer(t.view, { selection: Selection.SAMPLED, sampleK: 2, seed: 3 });
  const q = new PlacementQuery();
  const out = new Int32Array(4);
  for (let i = 0; i < 4; i++) expect(placer.place(q.set(3000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
  return { t, placer, q, out };
}

describe('verdict cache', () => {
  it('lets a verdict made without constraints answer a constrained request at least as large', () => {
    const { t, placer, q, out } = filled();
    const compiler = new ConstraintCompiler(t.interner);
    const z0 = compiler.compile([{ attribute: 'zone', operator: '=', value: 'z0' }])!;
    expect(placer.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    const hits = placer.genericVerdicts.hits;
    expect(placer.place(q.set(2000, 2048, 0, 0, 0, Policy.BINPACK, z0, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect(placer.reason).toBe(Reason.CPU);
    expect(placer.genericVerdicts.hits).toBe(hits + 1);
  });

  it('answers a request at least as large as a known-unplaceable one without diagnosing', () => {
    const { placer, q, out } = filled();
    expect(placer.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect(placer.reason).toBe(Reason.CPU);
    const hits = (placer.verdicts.hits + placer.genericVerdicts.hits);
    // Larger in every dimension: dominated, so the cached verdict applies.
    expect(placer.place(q.set(2500, 2048, 0, 0, 0, Policy.SPREAD, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect((placer.verdicts.hits + placer.genericVerdicts.hits)).toBe(hits + 1);
    // Smaller in one dimension: not covered, must be decided afresh (and it fits).
    expect(placer.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    expect((placer.verdicts.hits + placer.genericVerdicts.hits)).toBe(hits + 1);
  });

  it('does not keep a verdict of lost races: the next request of the shape gets the row once it is free', () => {
    const { t, placer, q, out } = filled();
    // n0..n3 have 1000m free each; a writer holds n0 and n1 (mid-commit from another thread's view),
    // and n2, n3 are taken by two 1-cpu tasks: the only rows that fit are busy, so the task loses.
    expect(placer.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    expect(placer.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    const held = ['n0', 'n1', 'n2', 'n3'].map((id) => t.rowOf(id)).filter((row) => t.view.capCpu[row]! - t.view.usedCpu[row]! >= 1000);
    expect(held).toHaveLength(2);
    const versions = held.map((row) => lockRow(t.view, row));
    expect(placer.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect(placer.reason).toBe(Reason.CONFLICTS);
    held.forEach((row, i) => unlockRow(t.view, row, versions[i]!));
    // Nothing was freed (FREED_GEN did not move): a kept verdict would answer this one with CONFLICTS.
    expect(placer.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
  });

  it('does not keep a verdict of lost races when nodes are draining either (the reason word carries their count)', () => {
    const t = new NodeTable({ shardSize: 8 });
    for (let i = 0; i < 3; i++) t.addNode({ id: `n${i}`, resources: { cpus: 4, mem: '8Gi' } });
    t.setState('n2', NodeState.DRAINING);
    const placer = new Placer(t.view, { selection: Selection.EXACT, sampleK: 2, seed: 3 });
    const q = new PlacementQuery();
    const out = new Int32Array(4);
    const rows = ['n0', 'n1'].map((id) => t.rowOf(id));
    const versions = rows.map((row) => lockRow(t.view, row));
    expect(placer.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect(reasonCode(placer.reason)).toBe(Reason.CONFLICTS);
    expect(reasonNotUp(placer.reason)).toBe(1);
    rows.forEach((row, i) => unlockRow(t.view, row, versions[i]!));
    expect(placer.place(q.set(1000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
  });

  it('forgets every verdict when resources are freed', () => {
    const { t, placer, q, out } = filled();
    expect(placer.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    const row = t.rowOf('n0');
    releaseRow(t.view, row, 3000, 1024, 0, 0, []);
    const hits = (placer.verdicts.hits + placer.genericVerdicts.hits);
    expect(placer.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    expect((placer.verdicts.hits + placer.genericVerdicts.hits)).toBe(hits);
  });

  it('keeps verdicts apart per constraint set', () => {
    const { t, placer, q, out } = filled();
    const compiler = new ConstraintCompiler(t.interner);
    const z0 = compiler.compile([{ attribute: 'zone', operator: '=', value: 'z0' }])!;
    expect(placer.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, z0, null), out, 0)).toBe(Status.UNPLACEABLE);
    const hits = (placer.verdicts.hits + placer.genericVerdicts.hits);
    // Same shape without the constraint: a different question.
    expect(placer.place(q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.UNPLACEABLE);
    expect((placer.verdicts.hits + placer.genericVerdicts.hits)).toBe(hits);
  });
});
