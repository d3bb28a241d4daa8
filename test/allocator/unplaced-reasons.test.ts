import { describe, expect, it } from 'vitest';
import type { Allocator, TaskRequest, Unplaced } from '../../src/allocator/allocator.js';
import { allocatorFixture, nodes } from './helpers.js';

// When some nodes are draining or down and the up ones refuse for a reason of their own, the
// reason must name what blocked the up nodes, with the others only as context (QA: a limit-blocked
// task said "no node is up" while zone c was up).

const make = allocatorFixture();

/** n0, n1, n2 in zones a, b, c (4 cpus, 8 GiB each); n0 draining and n1 down, n2 up. */
async function twoOfThreeGone(): Promise<Allocator> {
  const a = await make({ nodes: nodes(3), workers: 1 });
  a.drainNode('n0');
  a.markNodeDown('n1');
  return a;
}

async function one(a: Allocator, t: TaskRequest): Promise<Unplaced> {
  const r = await a.place([t]);
  expect(r.assignments).toEqual([]);
  expect(r.unplaced).toHaveLength(1);
  return r.unplaced[0]!;
}

describe('unplaced reasons with nodes draining or down', () => {
  it('names the zone limit, not "no node is up", when the only up node is at its limit', async () => {
    const a = await twoOfThreeGone();
    const limit = { job: 'hello', resources: { cpus: 1, mem: '1Gi' }, constraints: [{ attribute: 'zone', operator: 'limit' as const, value: 1 }] };
    const first = await a.place([{ id: 'hello.0.0', ...limit }]);
    expect(first.assignments).toEqual([{ taskId: 'hello.0.0', nodeId: 'n2', ports: [] }]);
    const u = await one(a, { id: 'hello.1.2', ...limit });
    expect(u.code).toBe('limit');
    expect(u.status).toBe('unplaceable');
    expect(u.reason).toMatch(/zone limit 1 reached on every eligible up node/);
    expect(u.reason).toMatch(/\(2 nodes draining or down\)/);
    expect(u.reason).not.toMatch(/no node is up/);
  });

  it('names distinct_hosts when the up node already runs an instance', async () => {
    const a = await twoOfThreeGone();
    const dh = { job: 'db', resources: { cpus: 1 }, constraints: [{ operator: 'distinct_hosts' as const }] };
    expect((await a.place([{ id: 'db.0', ...dh }])).assignments).toHaveLength(1);
    const u = await one(a, { id: 'db.1', ...dh });
    expect(u.code).toBe('distinct_hosts');
    expect(u.reason).toMatch(/^distinct hosts: every fitting up node already runs an instance \(2 nodes draining or down\)$/);
  });

  it('names the resource short on the up node, with its free amount', async () => {
    const a = await twoOfThreeGone();
    expect((await a.place([{ id: 'big', resources: { cpus: 3 } }])).assignments).toHaveLength(1);
    const u = await one(a, { id: 'more', resources: { cpus: 2 } });
    expect(u).toMatchObject({ code: 'insufficient_cpus', status: 'unplaceable' });
    expect(u.reason).toBe('insufficient cpus: 2 requested, at most 1 free on any up node (2 nodes draining or down)');
  });

  it('says what the up nodes lack for good when only a node that is down could ever hold the task', async () => {
    const a = await make({ nodes: [...nodes(2, { cpus: 2 }), { ...nodes(3, { cpus: 8 })[2]! }], workers: 1 });
    a.markNodeDown('n2');
    const u = await one(a, { id: 'wide', resources: { cpus: 6 } });
    expect(u.code).toBe('insufficient_cpus');
    // The largest *capacity* among up nodes, not their free amount, and not "no node" while n2 has 8.
    expect(u.reason).toBe('no up node has 6 cpus (the largest has 2; 1 node draining or down)');
  });

  it('names an attribute constraint that excludes every up node', async () => {
    const a = await twoOfThreeGone();
    const u = await one(a, { id: 'zoned', resources: { cpus: 1 }, constraints: [{ attribute: 'zone', operator: '=', value: 'a' }] });
    expect(u.code).toBe('constraint');
    expect(u.reason).toBe('constraint zone=a matches no up node (2 nodes draining or down)');
  });

  it('still says no node is up, with the right count, when every node is draining or down', async () => {
    const a = await twoOfThreeGone();
    a.markNodeDown('n2');
    const u = await one(a, { id: 'any', resources: { cpus: 1 } });
    expect(u).toMatchObject({ code: 'nodes_not_up', status: 'unplaceable', reason: 'no node is up (3 draining or down)' });
  });

  it('says no node has the whole request at once when each part fits some node but none has all', async () => {
    const a = await make({ nodes: [...nodes(2, { cpus: 8 }), { ...nodes(3, { cpus: 4, gpus: 2 })[2]! }], workers: 1 });
    const u = await one(a, { id: 'both', resources: { cpus: 6, mem: '1Gi', gpus: 1 } });
    expect(u.status).toBe('unplaceable_final');
    expect(u.reason).toMatch(/^no node has 6 cpus, 1Gi mem, 1 gpus at once$/);
  });

  it('keeps the old wording when every node is up', async () => {
    const a = await make({ nodes: nodes(3), workers: 1 });
    const limit = { job: 'web', resources: { cpus: 1 }, constraints: [{ attribute: 'zone', operator: 'limit' as const, value: 1 }] };
    expect((await a.place([0, 1, 2].map((i) => ({ id: `w${i}`, ...limit })))).assignments).toHaveLength(3);
    const u = await one(a, { id: 'w3', ...limit });
    expect(u.code).toBe('limit');
    expect(u.reason).toBe('zone limit 1 reached on every eligible node');
  });
});

describe('unplaced reasons: ports', () => {
  it('counts the ports a node offers, not the span its ranges cover', async () => {
    // n0: 10 ports in two ranges spanning 1005 numbers, up; n1: 20 ports, draining (so the request is not above
    // every node's size, and the up nodes are scanned).
    const a = await make({
      nodes: [
        { id: 'n0', resources: { cpus: 4, mem: '8Gi' }, ports: '1000-1004,2000-2004' },
        { id: 'n1', resources: { cpus: 4, mem: '8Gi' }, ports: '3000-3019' },
      ],
      workers: 1,
    });
    a.drainNode('n1');
    const u = await one(a, { id: 'wide', resources: { cpus: 1, mem: '1Gi', ports: 11 } });
    expect(u.code).toBe('insufficient_ports');
    expect(u.reason).toMatch(/\b10\b/);
    expect(u.reason).not.toMatch(/1005/);
    // Ten fit.
    expect((await a.place([{ id: 'ten', resources: { cpus: 1, mem: '1Gi', ports: 10 } }])).assignments).toHaveLength(1);
  });
});
