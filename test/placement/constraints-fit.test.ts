import { describe, expect, it } from 'vitest';
import type { ConstraintSpec } from '../../src/placement/constraints/compile.js';
import { JobPlacementState } from '../../src/placement/constraints/job-state.js';
import { constraintsFit } from '../../src/placement/feasibility/constraints-fit.js';
import { Reason } from '../../src/placement/status.js';
import { type Cluster, cluster, spec } from './helpers.js';

/**
 * n1 zone=a rack=r1 gpu_model=a100
 * n2 zone=a rack=r2
 * n3 zone=b rack=r1 gpu_model=h100
 * n4 (no attributes)
 */
function fixture(): Cluster {
  return cluster([
    spec('n1', 8, 32, 1, { zone: 'a', rack: 'r1', gpu_model: 'a100' }),
    spec('n2', 8, 32, 0, { zone: 'a', rack: 'r2' }),
    spec('n3', 8, 32, 1, { zone: 'b', rack: 'r1', gpu_model: 'h100' }),
    spec('n4', 8, 32, 0),
  ]);
}

/** Reason per node id for a constraint list (job: ids of nodes already running an instance). */
function reasons(c: Cluster, specs: ConstraintSpec[], jobOn: string[] | null = null): Record<string, number> {
  const cs = c.compiler.compile(specs)!;
  const job = jobOn === null ? null : new JobPlacementState(cs, jobOn.map((id) => c.row[id]!), c.v);
  const out: Record<string, number> = {};
  for (const id of ['n1', 'n2', 'n3', 'n4']) out[id] = constraintsFit(c.v, c.row[id]!, cs, job);
  return out;
}

const OK = Reason.NONE;
const C0 = Reason.CONSTRAINT_BASE;

describe('constraintsFit: attribute tests', () => {
  it('= passes only nodes with that value', () => {
    expect(reasons(fixture(), [{ attribute: 'zone', operator: '=', value: 'a' }])).toEqual({ n1: OK, n2: OK, n3: C0, n4: C0 });
  });

  it('!= refuses nodes with that value and passes nodes lacking the attribute', () => {
    expect(reasons(fixture(), [{ attribute: 'zone', operator: '!=', value: 'a' }])).toEqual({ n1: C0, n2: C0, n3: OK, n4: OK });
    expect(reasons(fixture(), [{ attribute: 'gpu_model', operator: '!=', value: 'a100' }])).toEqual({ n1: C0, n2: OK, n3: OK, n4: OK });
  });

  it('!= on a value or key no node has passes every node', () => {
    expect(reasons(fixture(), [{ attribute: 'zone', operator: '!=', value: 'zz' }])).toEqual({ n1: OK, n2: OK, n3: OK, n4: OK });
    expect(reasons(fixture(), [{ attribute: 'colour', operator: 'ne', value: 'red' }])).toEqual({ n1: OK, n2: OK, n3: OK, n4: OK });
  });

  it('~ passes nodes whose value fully matches, never nodes lacking the attribute', () => {
    expect(reasons(fixture(), [{ attribute: 'gpu_model', operator: '~', value: 'a.*' }])).toEqual({ n1: OK, n2: C0, n3: C0, n4: C0 });
    expect(reasons(fixture(), [{ attribute: 'gpu_model', operator: '~', value: '.*' }])).toEqual({ n1: OK, n2: C0, n3: OK, n4: C0 });
    expect(reasons(fixture(), [{ attribute: 'rack', operator: '=~', value: 'r[0-9]' }])).toEqual({ n1: OK, n2: OK, n3: OK, n4: C0 });
  });

  it('reports the index of the first constraint that fails', () => {
    const r = reasons(fixture(), [
      { attribute: 'zone', operator: '=', value: 'a' },
      { attribute: 'rack', operator: '=', value: 'r2' },
      { attribute: 'gpu_model', operator: '!=', value: 'h100' },
    ]);
    expect(r).toEqual({ n1: C0 + 1, n2: OK, n3: C0, n4: C0 });
    const r2 = reasons(fixture(), [
      { attribute: 'rack', operator: '=', value: 'r1' },
      { attribute: 'gpu_model', operator: '!=', value: 'h100' },
    ]);
    expect(r2).toEqual({ n1: OK, n2: C0, n3: C0 + 1, n4: C0 });
  });
});

describe('constraintsFit: job-scoped constraints', () => {
  it('limit 1 per zone refuses a second instance in the same zone with Reason.LIMIT', () => {
    const c = fixture();
    const lim: ConstraintSpec[] = [{ attribute: 'zone', operator: 'limit', value: 1 }];
    expect(reasons(c, lim, [])).toEqual({ n1: OK, n2: OK, n3: OK, n4: C0 });
    expect(reasons(c, lim, ['n1'])).toEqual({ n1: Reason.LIMIT, n2: Reason.LIMIT, n3: OK, n4: C0 });
    expect(reasons(c, lim, ['n1', 'n3'])).toEqual({ n1: Reason.LIMIT, n2: Reason.LIMIT, n3: Reason.LIMIT, n4: C0 });
  });

  it('limit N allows N instances per value', () => {
    const c = fixture();
    const lim: ConstraintSpec[] = [{ attribute: 'zone', operator: 'limit', value: 2 }];
    expect(reasons(c, lim, ['n1'])).toEqual({ n1: OK, n2: OK, n3: OK, n4: C0 });
    expect(reasons(c, lim, ['n1', 'n2'])).toEqual({ n1: Reason.LIMIT, n2: Reason.LIMIT, n3: OK, n4: C0 });
    // Two instances on one node count twice.
    expect(reasons(c, lim, ['n2', 'n2'])).toEqual({ n1: Reason.LIMIT, n2: Reason.LIMIT, n3: OK, n4: C0 });
  });

  it('nodes lacking a limited attribute are never eligible, even with no instances yet or no job state', () => {
    const c = fixture();
    const cs = c.compiler.compile([{ attribute: 'gpu_model', operator: 'limit', value: 5 }])!;
    expect(constraintsFit(c.v, c.row.n2!, cs, null)).toBe(C0);
    expect(constraintsFit(c.v, c.row.n4!, cs, new JobPlacementState(cs, [], c.v))).toBe(C0);
    expect(constraintsFit(c.v, c.row.n1!, cs, null)).toBe(OK);
    // A key no node has: nobody is eligible.
    const none = c.compiler.compile([{ attribute: 'colour', operator: 'limit', value: 1 }])!;
    for (const id of ['n1', 'n2', 'n3', 'n4']) expect(constraintsFit(c.v, c.row[id]!, none, null)).toBe(C0);
  });

  it('JobPlacementState.add counts a newly placed instance', () => {
    const c = fixture();
    const cs = c.compiler.compile([{ attribute: 'rack', operator: 'limit', value: 1 }])!;
    const job = new JobPlacementState(cs, [], c.v);
    expect(constraintsFit(c.v, c.row.n3!, cs, job)).toBe(OK);
    job.add(c.v, c.row.n1!);
    expect(constraintsFit(c.v, c.row.n3!, cs, job)).toBe(Reason.LIMIT); // same rack r1
    expect(constraintsFit(c.v, c.row.n2!, cs, job)).toBe(OK);
    expect(job.rows.get(c.row.n1!)).toBe(1);
  });

  it('distinct_hosts refuses nodes already running an instance with Reason.DISTINCT_HOSTS', () => {
    const c = fixture();
    const dh: ConstraintSpec[] = [{ operator: 'distinct_hosts' }];
    expect(reasons(c, dh, [])).toEqual({ n1: OK, n2: OK, n3: OK, n4: OK });
    expect(reasons(c, dh, ['n2', 'n4'])).toEqual({ n1: OK, n2: Reason.DISTINCT_HOSTS, n3: OK, n4: Reason.DISTINCT_HOSTS });
  });

  it('combines attribute and job-scoped constraints', () => {
    const c = fixture();
    const r = reasons(
      c,
      [
        { attribute: 'rack', operator: '=', value: 'r1' },
        { attribute: 'zone', operator: 'limit', value: 1 },
        { operator: 'distinct_hosts' },
      ],
      ['n1'],
    );
    expect(r.n1).not.toBe(OK);
    expect(r.n2).toBe(C0);
    expect(r.n3).toBe(OK);
    expect(r.n4).toBe(C0);
  });
});
