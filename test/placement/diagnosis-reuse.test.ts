import { describe, expect, it } from 'vitest';
import { PlacementQuery } from '../../src/placement/query.js';
import { Policy } from '../../src/placement/scoring/policy.js';
import { Placer, Selection } from '../../src/placement/stack.js';
import { Reason, Status } from '../../src/placement/status.js';
import { releaseRow } from '../../src/table/commit.js';
import { NodeState } from '../../src/table/layout.js';
import { NodeTable } from '../../src/table/node-table.js';

/**
 * Placer reuses its last diagnosis for the same question on an unchanged table (a job whose task
 * fits nowhere asks once per instance); any write that could change the answer must void it.
 */
describe('diagnosis reuse', () => {
  it('answers a repeated question from the last diagnosis only while the table is unchanged', () => {
    const t = new NodeTable({ shardSize: 8 });
    const v = t.view;
    for (let i = 0; i < 4; i++) t.addNode({ id: `n${i}`, resources: { cpus: 4, mem: '8Gi' } });
    const placer = new Placer(v, { selection: Selection.EXACT, sampleK: 2, seed: 1 });
    const q = new PlacementQuery();
    const out = new Int32Array(1);
    // Fill every node but n0, which keeps 500m.
    for (let i = 0; i < 4; i++) {
      expect(placer.place(q.set(i === 0 ? 3500 : 4000, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).toBe(Status.OK);
    }
    let runs = 0;
    const run = placer.diagnosis.run.bind(placer.diagnosis);
    placer.diagnosis.run = (...a: Parameters<typeof run>): void => {
      runs++;
      run(...a);
    };
    q.set(2000, 1024, 0, 0, 0, Policy.BINPACK, null, null);
    expect(placer.place(q, out, 0)).toBe(Status.UNPLACEABLE);
    expect([placer.reason, placer.detail, runs]).toEqual([Reason.CPU, 500, 1]);
    expect(placer.place(q, out, 0)).toBe(Status.UNPLACEABLE);
    expect(runs).toBe(1);
    // A release changes the answer (more cpu free): it must be asked again.
    releaseRow(v, t.rowOf('n1'), 1000, 0, 0, 0, []);
    expect(placer.place(q, out, 0)).toBe(Status.UNPLACEABLE);
    expect([placer.reason, placer.detail, runs]).toEqual([Reason.CPU, 1000, 2]);
    // So does a drain (NODE_NOT_UP counts), which moves no EPOCH but the topology generation.
    t.setState('n1', NodeState.DRAINING);
    expect(placer.place(q, out, 0)).toBe(Status.UNPLACEABLE);
    expect([placer.detail, runs]).toEqual([500, 3]);
    // A larger question is covered by the verdict cache (it dominates one known unplaceable)...
    expect(placer.place(q.set(2000, 1024, 0, 1, 0, Policy.BINPACK, null, null), out, 0)).not.toBe(Status.OK);
    expect(runs).toBe(3);
    // ...a smaller one is a different question and gets its own answer.
    expect(placer.place(q.set(1500, 1024, 0, 0, 0, Policy.BINPACK, null, null), out, 0)).not.toBe(Status.OK);
    expect(runs).toBe(4);
  });
});
