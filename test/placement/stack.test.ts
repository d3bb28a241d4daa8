import { describe, expect, it } from 'vitest';
import { JobPlacementState } from '../../src/placement/constraints/job-state.js';
import type { PlacementQuery } from '../../src/placement/query.js';
import { POLICY_NAMES, Policy, score } from '../../src/placement/scoring/index.js';
import { Placer, Selection } from '../../src/placement/stack.js';
import { Reason, Status } from '../../src/placement/status.js';
import { fitsRow } from '../../src/table/commit.js';
import { NodeState } from '../../src/table/layout.js';
import type { NodeSpec } from '../../src/table/node-table.js';
import { constraintsFit } from '../../src/placement/feasibility/constraints-fit.js';
import { type Cluster, cluster, expectNoOvercommit, query, spec, use } from './helpers.js';

const exact = (c: Cluster, seed = 1): Placer => new Placer(c.v, { selection: Selection.EXACT, sampleK: 2, seed });
const sampled = (c: Cluster, seed = 1, sampleK = 2): Placer => new Placer(c.v, { selection: Selection.SAMPLED, sampleK, seed });

/** Places and returns the chosen node id (or null), with the placer's status for the caller to check. */
function placeId(c: Cluster, p: Placer, q: PlacementQuery, ports = new Int32Array(16)): string | null {
  const st = p.place(q, ports, 0);
  if (st !== Status.OK) return null;
  return c.t.idOf(p.row) ?? `row ${p.row}`;
}

/** Rows a query could go to right now (UP, fits, constraints pass). */
function feasibleRows(c: Cluster, q: PlacementQuery): Set<number> {
  const out = new Set<number>();
  for (const row of c.t.rows()) {
    if (!fitsRow(c.v, row, q.cpu, q.mem, q.disk, q.gpu, q.ports)) continue;
    if (q.cset !== null && constraintsFit(c.v, row, q.cset, q.job) !== Reason.NONE) continue;
    out.add(row);
  }
  return out;
}

/** Four 4-cpu 8 GiB nodes at 25%, 75%, 95% and 0% cpu. */
function hand(): Cluster {
  const c = cluster([spec('a', 4, 8), spec('b', 4, 8), spec('c', 4, 8), spec('d', 4, 8)]);
  use(c, 'a', 1000, 2048);
  use(c, 'b', 3000, 6144);
  use(c, 'c', 3800, 7800); // 200m free: too little for the task below
  return c;
}

describe('Placer: exact selection', () => {
  it('binpack takes the fullest node that fits', () => {
    const c = hand();
    const p = exact(c);
    expect(placeId(c, p, query(500, 1024))).toBe('b');
    expect(p.status).toBe(Status.OK);
    expect(p.reason).toBe(Reason.NONE);
    expect(c.t.snapshot('b').used.cpus).toBe(3500);
    // Still the fullest: it keeps packing b until b is full.
    expect(placeId(c, p, query(500, 1024))).toBe('b');
    expect(placeId(c, p, query(500, 1024))).toBe('a');
  });

  it('spread takes the emptiest node', () => {
    const c = hand();
    const p = exact(c);
    expect(placeId(c, p, query(500, 1024, { policy: Policy.SPREAD }))).toBe('d');
    // d is now at 12.5%, a at 25%: d again, then a and d alternate as they level.
    expect(placeId(c, p, query(500, 1024, { policy: Policy.SPREAD }))).toBe('d');
    expect(placeId(c, p, query(500, 1024, { policy: Policy.SPREAD }))).toBe('a');
  });

  it('balanced takes the node whose cpu and mem would be closest', () => {
    const c = cluster([spec('cpu-heavy', 4, 8), spec('even', 4, 8), spec('mem-heavy', 4, 8)]);
    use(c, 'cpu-heavy', 3000, 1024);
    use(c, 'even', 2000, 4096);
    use(c, 'mem-heavy', 500, 7000);
    expect(placeId(c, exact(c), query(500, 1024, { policy: Policy.BALANCED }))).toBe('even');
  });

  it('compares nodes of different machine classes (different shards)', () => {
    const c = cluster([spec('big', 64, 256), spec('small', 4, 16), spec('mid', 16, 64)]);
    use(c, 'big', 6400, 25 * 1024); // 10%
    use(c, 'small', 2400, 9830); // 60%
    use(c, 'mid', 4800, 19661); // 30%
    expect(new Set(Object.values(c.row).map((r) => (r / c.v.shardSize) | 0)).size).toBeGreaterThan(1);
    expect(placeId(c, exact(c), query(500, 512))).toBe('small');
    expect(placeId(c, exact(c), query(500, 512, { policy: Policy.SPREAD }))).toBe('big');
  });

  it('keeps CPU work off GPU nodes while anything else fits, and puts GPU work on them', () => {
    const c = cluster([spec('gpu', 4, 8, 2), spec('plain', 4, 8)]);
    use(c, 'gpu', 3000, 6144);
    for (const policy of [Policy.BINPACK, Policy.SPREAD, Policy.BALANCED]) {
      expect(placeId(c, exact(c), query(100, 100, { policy })), POLICY_NAMES[policy]).toBe('plain');
    }
    expect(placeId(c, exact(c), query(100, 100, { gpu: 1 }))).toBe('gpu');
    // When only the GPU node fits, CPU work may still use it.
    use(c, 'plain', c.v.capCpu[c.row.plain!]! - c.v.usedCpu[c.row.plain!]! - 100, 0);
    expect(placeId(c, exact(c), query(500, 100))).toBe('gpu');
  });

  it('never picks a drained or down node', () => {
    const c = hand();
    c.t.setState('b', NodeState.DRAINING);
    c.t.setState('d', NodeState.DOWN);
    const p = exact(c);
    expect(placeId(c, p, query(500, 1024))).toBe('a');
    expect(placeId(c, p, query(500, 1024, { policy: Policy.SPREAD }))).toBe('a');
  });

  it('returns the best score over all feasible rows on a larger random table', () => {
    const shapes: [number, number, number][] = [
      [4, 16, 0],
      [16, 64, 0],
      [64, 512, 0],
      [32, 256, 4],
    ];
    let x = 77;
    const rnd = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    const specs: NodeSpec[] = [];
    for (let i = 0; i < 300; i++) {
      const [cpus, mem, gpus] = shapes[rnd(shapes.length)]!;
      specs.push(spec(`n${i}`, cpus, mem, gpus));
    }
    for (const policy of [Policy.BINPACK, Policy.SPREAD, Policy.BALANCED]) {
      const c = cluster(specs, { shardSize: 16 });
      for (const id of Object.keys(c.row)) {
        const cap = c.v.capCpu[c.row[id]!]!;
        use(c, id, rnd(cap), rnd(c.v.capMem[c.row[id]!]!));
      }
      const p = exact(c, 5);
      for (let i = 0; i < 80; i++) {
        const q = query(100 * (1 + rnd(40)), 256 * (1 + rnd(40)), { policy, gpu: rnd(8) === 0 ? 1 : 0 });
        let bestScore = -Infinity;
        const scores = new Map<number, number>();
        for (const row of feasibleRows(c, q)) {
          const s = score(policy, c.v, row, q.cpu, q.mem, q.gpu);
          scores.set(row, s);
          if (s > bestScore) bestScore = s;
        }
        const st = p.place(q, new Int32Array(0), 0);
        if (scores.size === 0) {
          expect(st).not.toBe(Status.OK);
          continue;
        }
        expect(st, `${POLICY_NAMES[policy]} task ${i}`).toBe(Status.OK);
        expect(scores.has(p.row)).toBe(true);
        expect(scores.get(p.row)!, `${POLICY_NAMES[policy]} task ${i}`).toBeCloseTo(bestScore, 9);
      }
    }
  });
});

describe('Placer: sampled selection', () => {
  function grid(): Cluster {
    const specs: NodeSpec[] = [];
    for (let i = 0; i < 200; i++) specs.push(spec(`n${i}`, 8, 32, 0, { zone: `z${i % 4}` }));
    return cluster(specs, { shardSize: 16 });
  }

  it('yields the same sequence of rows for the same seed', () => {
    const run = (seed: number): number[] => {
      const c = grid();
      const p = sampled(c, seed);
      const rows: number[] = [];
      for (let i = 0; i < 60; i++) {
        expect(p.place(query(700, 1500, { policy: i % 3 === 0 ? Policy.BINPACK : Policy.SPREAD }), new Int32Array(0), 0)).toBe(Status.OK);
        rows.push(p.row);
      }
      return rows;
    };
    const a = run(42);
    expect(run(42)).toEqual(a);
    expect(run(43)).not.toEqual(a);
  });

  it('only ever returns feasible rows', () => {
    const c = grid();
    // Make most rows infeasible: fill zone z0 and z1 nodes, drain some z2 nodes.
    for (let i = 0; i < 200; i++) {
      if (i % 4 < 2) use(c, `n${i}`, 7500, 0);
      else if (i % 8 === 2) c.t.setState(`n${i}`, NodeState.DRAINING);
    }
    const cset = c.compiler.compile([{ attribute: 'zone', operator: '!=', value: 'z3' }]);
    const p = sampled(c, 9, 3);
    let placed = 0;
    for (let i = 0; i < 400; i++) {
      const q = query(1000, 2048, { cset, policy: i % 2 === 0 ? Policy.SPREAD : Policy.BINPACK });
      const feasible = feasibleRows(c, q);
      const st = p.place(q, new Int32Array(0), 0);
      if (feasible.size === 0) {
        expect(st).not.toBe(Status.OK);
        break;
      }
      expect(st).toBe(Status.OK);
      expect(feasible.has(p.row), `row ${p.row} (${c.t.idOf(p.row)}) was not feasible`).toBe(true);
      placed++;
    }
    // Only the 25 UP z2 nodes qualify, 8 tasks each.
    expect(placed).toBe(25 * 8);
    expectNoOvercommit(c.v, c.v.rowLimit());
  });
});

describe('Placer: filling the cluster', () => {
  const modes: [string, (c: Cluster) => Placer][] = [
    ['exact', (c) => exact(c, 3)],
    ['sampled', (c) => sampled(c, 3)],
  ];
  for (const [name, make] of modes) {
    for (const policy of [Policy.BINPACK, Policy.SPREAD, Policy.BALANCED]) {
      it(`${name} ${POLICY_NAMES[policy]}: places until full and never over-commits`, () => {
        const specs: NodeSpec[] = [];
        for (let i = 0; i < 60; i++) specs.push(spec(`n${i}`, i % 3 === 0 ? 8 : 4, 16, i % 10 === 0 ? 1 : 0));
        const c = cluster(specs, { shardSize: 8 });
        const p = make(c);
        const sum = new Map<number, { cpu: number; mem: number; ports: Set<number> }>();
        const out = new Int32Array(2);
        let placed = 0;
        let last: number = Status.OK;
        for (let i = 0; i < 10_000; i++) {
          const q = query(1000, 1024 + (i % 3) * 512, { policy, ports: 2 });
          last = p.place(q, out, 0);
          if (last !== Status.OK) break;
          placed++;
          const s = sum.get(p.row) ?? { cpu: 0, mem: 0, ports: new Set<number>() };
          s.cpu += q.cpu;
          s.mem += q.mem;
          for (const port of out) {
            expect(s.ports.has(port), `port ${port} handed out twice on row ${p.row}`).toBe(false);
            expect(port).toBeGreaterThanOrEqual(31000);
            expect(port).toBeLessThanOrEqual(31009);
            s.ports.add(port);
          }
          sum.set(p.row, s);
        }
        expect(last).toBe(Status.UNPLACEABLE);
        expectNoOvercommit(c.v, c.v.rowLimit());
        for (const [row, s] of sum) {
          expect(c.v.usedCpu[row]).toBe(s.cpu);
          expect(c.v.usedMem[row]).toBe(s.mem);
        }
        // Every node ends with less than one task's cpu or ports left: nothing was left unfilled.
        for (const row of c.t.rows()) {
          const full = c.v.capCpu[row]! - c.v.usedCpu[row]! < 1000 || c.v.portsFree[row]! < 2 || c.v.capMem[row]! - c.v.usedMem[row]! < 1024;
          expect(full, `row ${row} still has room`).toBe(true);
        }
        // 20 8-cpu nodes are bounded by ports (5 tasks), 40 4-cpu nodes by cpu (4 tasks).
        expect(placed).toBe(20 * 5 + 40 * 4);
      });
    }
  }
});

describe('Placer: job-scoped constraints and outcomes', () => {
  it('honours distinct_hosts across placements, then reports DISTINCT_HOSTS', () => {
    const c = cluster([spec('a', 8, 32), spec('b', 8, 32), spec('c', 8, 32)]);
    const cset = c.compiler.compile([{ operator: 'distinct_hosts' }])!;
    const job = new JobPlacementState(cset, [], c.v);
    const p = exact(c);
    const seen = new Set<string | null>();
    for (let i = 0; i < 3; i++) {
      const q = query(100, 100, { cset });
      q.job = job;
      seen.add(placeId(c, p, q));
    }
    expect(seen).toEqual(new Set(['a', 'b', 'c']));
    const q = query(100, 100, { cset });
    q.job = job;
    expect(p.place(q, new Int32Array(0), 0)).toBe(Status.UNPLACEABLE);
    expect(p.reason).toBe(Reason.DISTINCT_HOSTS);
    expect(p.row).toBe(-1);
  });

  it('honours limit 1 per zone, then reports LIMIT', () => {
    const c = cluster([spec('a1', 8, 32, 0, { zone: 'a' }), spec('a2', 8, 32, 0, { zone: 'a' }), spec('b1', 8, 32, 0, { zone: 'b' })]);
    const cset = c.compiler.compile([{ attribute: 'zone', operator: 'limit', value: 1 }])!;
    const job = new JobPlacementState(cset, [], c.v);
    const p = sampled(c, 11);
    const zones: string[] = [];
    for (let i = 0; i < 2; i++) {
      const q = query(100, 100, { cset });
      q.job = job;
      const id = placeId(c, p, q);
      expect(id).not.toBeNull();
      zones.push(c.t.snapshot(id!).attributes.zone!);
    }
    expect(zones.sort()).toEqual(['a', 'b']);
    const q = query(100, 100, { cset });
    q.job = job;
    expect(p.place(q, new Int32Array(0), 0)).toBe(Status.UNPLACEABLE);
    expect(p.reason).toBe(Reason.LIMIT);
  });

  it('reports NO_NODES on an empty table and final capacity reasons with their detail', () => {
    const empty = cluster([]);
    const p0 = exact(empty);
    expect(p0.place(query(100, 100), new Int32Array(0), 0)).toBe(Status.UNPLACEABLE_FINAL);
    expect(p0.reason).toBe(Reason.NO_NODES);
    const c = cluster([spec('a', 8, 32, 2)]);
    for (const p of [exact(c), sampled(c)]) {
      expect(p.place(query(100, 100, { gpu: 3 }), new Int32Array(0), 0)).toBe(Status.UNPLACEABLE_FINAL);
      expect(p.reason).toBe(Reason.GPU);
      expect(p.detail).toBe(2);
      expect(p.row).toBe(-1);
    }
    expect(c.t.snapshot('a').used).toEqual({ cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 });
  });

  it('writes the chosen ports at the given offset', () => {
    const c = cluster([spec('a', 8, 32)]);
    const out = new Int32Array(6).fill(-1);
    expect(exact(c).place(query(100, 100, { ports: 3 }), out, 2)).toBe(Status.OK);
    expect([...out]).toEqual([-1, -1, 31000, 31001, 31002, -1]);
  });
});
