import { describe, expect, it } from 'vitest';
import { JobPlacementState } from '../../src/placement/constraints/job-state.js';
import { Candidates } from '../../src/placement/selection/candidates.js';
import { RegionMisses } from '../../src/placement/selection/region-misses.js';
import { ShardMisses } from '../../src/placement/selection/shard-misses.js';
import { ScanMemory, scanShards } from '../../src/placement/selection/shard-scan.js';
import { Placer, Selection } from '../../src/placement/stack.js';
import { Status } from '../../src/placement/status.js';
import { lockRow, releaseRow, unlockRow } from '../../src/table/commit.js';
import { Header } from '../../src/table/layout.js';
import type { TableView } from '../../src/table/view.js';
import { type Cluster, cluster, query, spec, use } from './helpers.js';

const gen = (v: TableView): number => Atomics.load(v.header, Header.FREED_GEN) + Atomics.load(v.header, Header.TOPOLOGY_GEN);

/** Eight 4-cpu nodes in shards of 4 (rows 0-3 and 4-7), all but `free` filled to 3.5 cpus. */
function nearlyFull(free: string[] = []): Cluster {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  const c = cluster(
    ids.map((id, i) => spec(id, 4, 8, 0, { zone: i % 2 === 0 ? 'z1' : 'z2' })),
    { shardSize: 4 },
  );
  for (const id of ids) if (!free.includes(id)) use(c, id, 3500, 1024);
  return c;
}

/** Scans every shard once, as the sampled fallback does; returns the candidates. */
function scanAll(c: Cluster, mem: ScanMemory, q = query(1000, 512)): Candidates {
  const cands = new Candidates();
  mem.gen = gen(c.v);
  scanShards(c.v, q, cands, c.v.rowLimit(), 0, 1, c.v.shardCount(c.v.rowLimit()), 0, 0, 4, mem);
  return cands;
}

describe('ShardMisses', () => {
  it('covers a request at least as large in every dimension, at the same generation only', () => {
    const m = new ShardMisses();
    m.record(3, query(1000, 512, { disk: 10, ports: 1 }), 7);
    expect(m.covers(3, query(1000, 512, { disk: 10, ports: 1 }), 7)).toBe(true);
    expect(m.covers(3, query(2000, 600, { disk: 10, ports: 2 }), 7)).toBe(true);
    expect(m.covers(3, query(999, 4096, { disk: 10, ports: 1 }), 7)).toBe(false);
    expect(m.covers(3, query(1000, 512, { disk: 9, ports: 1 }), 7)).toBe(false);
    expect(m.covers(3, query(1000, 512, { disk: 10, ports: 1 }), 8)).toBe(false);
    expect(m.covers(2, query(1000, 512, { disk: 10, ports: 1 }), 7)).toBe(false);
    expect(m.covers(1000, query(1000, 512), 7)).toBe(false);
  });

  it('an unconstrained miss covers constrained requests; a constrained one only its own set and job version', () => {
    const c = nearlyFull();
    const z1 = c.compiler.compile([{ attribute: 'zone', operator: '=', value: 'z1' }]);
    const z2 = c.compiler.compile([{ attribute: 'zone', operator: '=', value: 'z2' }]);
    const m = new ShardMisses();
    m.record(0, query(1000, 512), 1);
    expect(m.covers(0, query(1000, 512, { cset: z1 }), 1)).toBe(true);
    m.record(1, query(1000, 512, { cset: z1 }), 1);
    expect(m.covers(1, query(1000, 512, { cset: z1 }), 1)).toBe(true);
    expect(m.covers(1, query(1000, 512, { cset: z2 }), 1)).toBe(false);
    expect(m.covers(1, query(1000, 512), 1)).toBe(false);
    const limited = c.compiler.compile([{ attribute: 'zone', operator: 'limit', value: 1 }])!;
    const job = new JobPlacementState(limited, [], c.v);
    const q = query(1000, 512, { cset: limited });
    q.job = job;
    m.record(2, q, 1);
    expect(m.covers(2, q, 1)).toBe(true);
    job.add(c.v, c.row.a!);
    expect(m.covers(2, q, 1)).toBe(false);
  });
});

describe('RegionMisses', () => {
  it('remembers per owner, scoped like the verdict caches, and forgets on clear', () => {
    const c = nearlyFull();
    const z1 = c.compiler.compile([{ attribute: 'zone', operator: '=', value: 'z1' }]);
    const r = new RegionMisses();
    r.record(1, query(1000, 512), 5);
    expect(r.covers(1, query(1500, 512, { cset: z1 }), 5)).toBe(true);
    expect(r.covers(0, query(1500, 512), 5)).toBe(false);
    expect(r.covers(1, query(500, 512), 5)).toBe(false);
    r.record(0, query(1000, 512, { cset: z1 }), 5);
    expect(r.covers(0, query(1000, 512, { cset: z1 }), 5)).toBe(true);
    expect(r.covers(0, query(1000, 512), 5)).toBe(false);
    r.clear();
    expect(r.covers(1, query(1500, 512), 5)).toBe(false);
  });
});

describe('the sampled fallback scan remembers misses', () => {
  it('skips a shard it read in full for nothing, and reads it again once something is freed', () => {
    const c = nearlyFull();
    const mem = new ScanMemory();
    expect(scanAll(c, mem).found).toBe(0);
    expect(mem.shards.covers(0, query(1000, 512), gen(c.v))).toBe(true);
    expect(mem.shards.covers(1, query(1000, 512), gen(c.v))).toBe(true);
    // A release moves the generation: the remembered misses no longer hold, and the row is found.
    releaseRow(c.v, c.row.f!, 3500, 1024, 0, 0, []);
    const cands = scanAll(c, mem);
    expect(cands.found).toBe(1);
    expect(cands.bestRow).toBe(c.row.f);
  });

  it('does not remember a miss when a row was held by a writer while it read', () => {
    const c = nearlyFull(['b']);
    const mem = new ScanMemory();
    const held = lockRow(c.v, c.row.b!);
    expect(scanAll(c, mem).found).toBe(0);
    expect(mem.shards.covers(0, query(1000, 512), gen(c.v))).toBe(false);
    unlockRow(c.v, c.row.b!, held);
    // Nothing was freed (same generation), and b is found: the busy row's "no" was not remembered.
    const cands = scanAll(c, mem);
    expect(cands.bestRow).toBe(c.row.b);
  });

  it('a placer with two owners still places on the other owner\'s rows once its own are known full', () => {
    const c = nearlyFull(['e', 'f']); // rows 4-5: shard 1, owned by index 1 of 2
    const p = new Placer(c.v, { selection: Selection.SAMPLED, sampleK: 2, seed: 3 });
    p.setOwnership(0, 2);
    const out = new Int32Array(4);
    expect(p.place(query(1000, 512), out, 0)).toBe(Status.OK);
    expect([c.row.e, c.row.f]).toContain(p.row);
    // Own shard 0 is now remembered as full for this shape; the next task goes straight to shard 1.
    expect(p.place(query(1000, 512), out, 0)).toBe(Status.OK);
    expect([c.row.e, c.row.f]).toContain(p.row);
  });
});
