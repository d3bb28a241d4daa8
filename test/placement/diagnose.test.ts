import { describe, expect, it } from 'vitest';
import { JobPlacementState } from '../../src/placement/constraints/job-state.js';
import { Diagnosis } from '../../src/placement/diagnose.js';
import type { PlacementQuery } from '../../src/placement/query.js';
import { REASON_BITS, REASON_SLOTS, Reason, Status, reasonCode, reasonNotUp } from '../../src/placement/status.js';
import { NodeState } from '../../src/table/layout.js';
import { NodeTable } from '../../src/table/node-table.js';
import { recomputeSummary } from '../../src/table/summary.js';
import type { TableView } from '../../src/table/view.js';
import { type Cluster, cluster, query, spec, use } from './helpers.js';

function diagnose(v: TableView, q: PlacementQuery): Diagnosis {
  const d = new Diagnosis();
  d.run(v, q, v.rowLimit());
  return d;
}

/** Makes every shard summary exact, as the scans of a busy allocator would have. */
function recomputeAll(v: TableView): void {
  const limit = v.rowLimit();
  for (let s = 0; s < v.shardCount(limit); s++) recomputeSummary(v, s, limit);
}

/** Two 8-cpu 32 GiB nodes and one 4-cpu 16 GiB node with 2 gpus, in zones a, b, c. */
function three(): Cluster {
  return cluster([
    spec('n1', 8, 32, 0, { zone: 'a' }),
    spec('n2', 8, 32, 0, { zone: 'b' }),
    spec('g1', 4, 16, 2, { zone: 'c' }),
  ]);
}

describe('Diagnosis', () => {
  it('says NO_NODES (final) for an empty table', () => {
    const t = new NodeTable();
    const d = diagnose(t.view, query(100, 100));
    expect(d.status).toBe(Status.UNPLACEABLE_FINAL);
    expect(d.reason).toBe(Reason.NO_NODES);
  });

  it('says UNPLACEABLE_FINAL with the dimension and the largest capacity for a request above every node', () => {
    const c = three();
    let d = diagnose(c.v, query(100, 100, { gpu: 4 }));
    expect([d.status, d.reason, d.detail]).toEqual([Status.UNPLACEABLE_FINAL, Reason.GPU, 2]);
    d = diagnose(c.v, query(9000, 100));
    expect([d.status, d.reason, d.detail]).toEqual([Status.UNPLACEABLE_FINAL, Reason.CPU, 8000]);
    d = diagnose(c.v, query(100, 40 * 1024));
    expect([d.status, d.reason, d.detail]).toEqual([Status.UNPLACEABLE_FINAL, Reason.MEM, 32 * 1024]);
    d = diagnose(c.v, query(100, 100, { disk: 200 * 1024 }));
    expect([d.status, d.reason, d.detail]).toEqual([Status.UNPLACEABLE_FINAL, Reason.DISK, 100 * 1024]);
    d = diagnose(c.v, query(100, 100, { ports: 11 }));
    expect([d.status, d.reason, d.detail]).toEqual([Status.UNPLACEABLE_FINAL, Reason.PORTS, 10]);
  });

  it('says UNPLACEABLE with the resource reason when the cluster is full, detail = most free', () => {
    const c = three();
    use(c, 'n1', 8000, 0);
    use(c, 'n2', 7500, 0);
    use(c, 'g1', 4000, 0);
    for (const recompute of [false, true]) {
      if (recompute) recomputeAll(c.v);
      const d = diagnose(c.v, query(1000, 1024));
      expect(d.status).toBe(Status.UNPLACEABLE);
      expect(d.reason).toBe(Reason.CPU);
      expect(d.detail).toBe(500);
    }
  });

  it('says UNPLACEABLE (not final) when only a currently busy node could hold the task', () => {
    const c = three();
    use(c, 'n1', 6000, 0);
    use(c, 'n2', 6000, 0);
    use(c, 'g1', 1000, 0);
    const d = diagnose(c.v, query(4000, 1024));
    expect(d.status).toBe(Status.UNPLACEABLE);
    expect(d.reason).toBe(Reason.CPU);
  });

  it('says the task lost a race (CONFLICTS, not final) when a node fits it right now, whatever most nodes say', () => {
    const c = three();
    use(c, 'n1', 6000, 0);
    use(c, 'n2', 6000, 0);
    // Two nodes short of cpu, g1 fits: a selection that ended here lost g1 to another writer.
    const d = diagnose(c.v, query(4000, 1024));
    expect(d.status).toBe(Status.UNPLACEABLE);
    expect(d.reason).toBe(Reason.CONFLICTS);
    expect(d.counts[Reason.CPU]).toBe(2);
  });

  it('says UNPLACEABLE_FINAL when no single node could ever hold the task, though each dimension fits somewhere', () => {
    // 6 cpus fit n1/n2, 1 gpu fits g1, but no node has both.
    const c = three();
    const d = diagnose(c.v, query(6000, 1024, { gpu: 1 }));
    expect(d.status).toBe(Status.UNPLACEABLE_FINAL);
    expect([Reason.CPU, Reason.GPU]).toContain(d.reason);
  });

  // diagnose.ts bySummaries: when exact shard summaries prove no row has a free gpu, it returns
  // UNPLACEABLE ("retry later") without asking whether any row could ever hold the task. Here no node
  // has 6 cpus and a gpu, so the answer must be UNPLACEABLE_FINAL, as it is while summaries are stale.
  it('stays UNPLACEABLE_FINAL for a task no node could ever hold once shard summaries are exact', () => {
    const c = three();
    use(c, 'g1', 0, 0, 2);
    recomputeAll(c.v);
    const d = diagnose(c.v, query(6000, 1024, { gpu: 1 }));
    expect(d.status).toBe(Status.UNPLACEABLE_FINAL);
  });

  it('says UNPLACEABLE_FINAL with CONSTRAINT_BASE + index for a constraint no node matches', () => {
    const c = three();
    let cset = c.compiler.compile([{ attribute: 'zone', operator: '=', value: 'mars' }]);
    let d = diagnose(c.v, query(100, 100, { cset }));
    expect([d.status, d.reason]).toEqual([Status.UNPLACEABLE_FINAL, Reason.CONSTRAINT_BASE]);
    expect(d.detail).toBe(3); // nodes it filtered
    cset = c.compiler.compile([
      { attribute: 'zone', operator: '!=', value: 'c' },
      { attribute: 'rack', operator: '=', value: 'r1' },
    ]);
    d = diagnose(c.v, query(100, 100, { cset }));
    expect(d.status).toBe(Status.UNPLACEABLE_FINAL);
    expect(d.reason).toBe(Reason.CONSTRAINT_BASE + 1);
  });

  it('says UNPLACEABLE with Reason.LIMIT when every eligible zone is at its limit', () => {
    const c = three();
    const cset = c.compiler.compile([{ attribute: 'zone', operator: 'limit', value: 1 }])!;
    const job = new JobPlacementState(cset, [c.row.n1!, c.row.n2!, c.row.g1!], c.v);
    const q = query(100, 100, { cset });
    q.job = job;
    const d = diagnose(c.v, q);
    expect(d.status).toBe(Status.UNPLACEABLE);
    expect(d.reason).toBe(Reason.LIMIT);
  });

  it('says UNPLACEABLE with Reason.DISTINCT_HOSTS when every node already runs an instance', () => {
    const c = three();
    const cset = c.compiler.compile([{ operator: 'distinct_hosts' }])!;
    const q = query(100, 100, { cset });
    q.job = new JobPlacementState(cset, [c.row.n1!, c.row.n2!, c.row.g1!], c.v);
    const d = diagnose(c.v, q);
    expect(d.status).toBe(Status.UNPLACEABLE);
    expect(d.reason).toBe(Reason.DISTINCT_HOSTS);
  });

  it('says NODE_NOT_UP (not final) when every node is drained or down', () => {
    const c = three();
    c.t.setState('n1', NodeState.DRAINING);
    c.t.setState('n2', NodeState.DOWN);
    c.t.setState('g1', NodeState.DOWN);
    const d = diagnose(c.v, query(100, 100));
    expect(d.status).toBe(Status.UNPLACEABLE);
    expect(d.reason).toBe(Reason.NODE_NOT_UP);
    expect(d.detail).toBe(3); // the rows draining or down, which the reason text reports
  });

  describe('with some nodes draining or down, the reason is what blocked the up ones', () => {
    function twoGone(): Cluster {
      const c = three();
      c.t.setState('n1', NodeState.DRAINING);
      c.t.setState('n2', NodeState.DOWN);
      return c;
    }

    it('packs the reason and the count of absent rows into one word', () => {
      expect(1 << REASON_BITS).toBe(REASON_SLOTS);
      const c = twoGone();
      use(c, 'g1', 4000, 0);
      const d = diagnose(c.v, query(1000, 1024));
      expect([d.status, reasonCode(d.reason), reasonNotUp(d.reason), d.detail]).toEqual([Status.UNPLACEABLE, Reason.CPU, 2, 0]);
    });

    it('LIMIT, with the index of the limit constraint in its detail', () => {
      const c = twoGone();
      const cset = c.compiler.compile([
        { attribute: 'zone', operator: '!=', value: 'x' },
        { attribute: 'zone', operator: 'limit', value: 5 },
        { attribute: 'zone', operator: 'limit', value: 1 },
      ])!;
      const q = query(100, 100, { cset });
      q.job = new JobPlacementState(cset, [c.row.g1!], c.v);
      const d = diagnose(c.v, q);
      expect([d.status, reasonCode(d.reason), reasonNotUp(d.reason), d.detail]).toEqual([Status.UNPLACEABLE, Reason.LIMIT, 2, 2]);
    });

    it('DISTINCT_HOSTS', () => {
      const c = twoGone();
      const cset = c.compiler.compile([{ operator: 'distinct_hosts' }])!;
      const q = query(100, 100, { cset });
      q.job = new JobPlacementState(cset, [c.row.g1!], c.v);
      const d = diagnose(c.v, q);
      expect([d.status, reasonCode(d.reason), reasonNotUp(d.reason)]).toEqual([Status.UNPLACEABLE, Reason.DISTINCT_HOSTS, 2]);
    });

    it('a final resource verdict with the largest up capacity, not the largest free amount', () => {
      const c = twoGone();
      use(c, 'g1', 3000, 0);
      const d = diagnose(c.v, query(6000, 1024));
      expect([d.status, reasonCode(d.reason), reasonNotUp(d.reason), d.detail]).toEqual([Status.UNPLACEABLE_FINAL, Reason.CPU, 2, 4000]);
    });

    it('an attribute constraint no up node matches', () => {
      const c = twoGone();
      const cset = c.compiler.compile([{ attribute: 'zone', operator: '=', value: 'a' }]);
      const d = diagnose(c.v, query(100, 100, { cset }));
      expect([d.status, reasonCode(d.reason), reasonNotUp(d.reason)]).toEqual([Status.UNPLACEABLE_FINAL, Reason.CONSTRAINT_BASE, 2]);
    });
  });

  it('counts the first filter each node fails', () => {
    const c = three();
    use(c, 'n1', 8000, 0);
    const cset = c.compiler.compile([{ attribute: 'zone', operator: '!=', value: 'b' }]);
    const d = diagnose(c.v, query(1000, 1024, { cset, gpu: 0 }));
    // n1: cpu, n2: constraint; g1 fits now, so it is counted as lost to races (CONFLICTS).
    expect(d.counts[Reason.CPU]).toBe(1);
    expect(d.counts[Reason.CONSTRAINT_BASE]).toBe(1);
    expect(d.counts[Reason.CONFLICTS]).toBe(1);
  });
});
