import { afterEach, describe, expect, it } from 'vitest';
import { Allocator, type Assignment, type TaskRequest } from '../../src/allocator/allocator.js';
import { NodeState } from '../../src/table/layout.js';
import { nodes } from './helpers.js';

let alloc: Allocator | null = null;
afterEach(async () => {
  await alloc?.close();
  alloc = null;
});

/**
 * Many placement threads (more than cores, so they interleave) placing and releasing at once on a
 * small table where every task competes for the same few rows. After every wave, each node is
 * re-read from the shared table: used never exceeds capacity, and equals exactly the sum of the
 * tasks the test holds on it (every assignment accounted for, none lost, none double-counted).
 */
describe('optimistic commit under contention', () => {
  it.each(['sampled', 'exact'] as const)('never over-commits and accounts for every assignment (%s)', async (selection) => {
    alloc = await Allocator.create({ nodes: nodes(6, { cpus: 4, mem: '4Gi' }), workers: 6, selection, sampleK: 2, roundSize: 16 });
    const a = alloc;
    const held = new Map<string, Assignment & { cpu: number; mem: number }>();
    let seq = 0;
    let rng = 12345;
    const rand = (n: number): number => {
      rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
      return rng % n;
    };
    for (let wave = 0; wave < 25; wave++) {
      const batches: Promise<void>[] = [];
      for (let b = 0; b < 6; b++) {
        const batch: TaskRequest[] = [];
        for (let i = 0; i < 20; i++) {
          const cpu = [250, 500, 1000][rand(3)]!;
          const mem = [128, 256, 512][rand(3)]!;
          batch.push({ id: `t${seq++}`, role: `r${b % 3}`, resources: { cpus: cpu / 1000, mem, ports: rand(2) } });
        }
        batches.push(
          a.place(batch).then((r) => {
            for (const as of r.assignments) {
              const t = batch.find((x) => x.id === as.taskId)!;
              held.set(as.taskId, { ...as, cpu: Number(t.resources.cpus) * 1000, mem: Number(t.resources.mem) });
            }
          }),
        );
      }
      // Release a random third while the placements are in flight.
      for (const id of [...held.keys()]) {
        if (rand(3) === 0) {
          a.release(id);
          held.delete(id);
        }
      }
      await Promise.all(batches);
      audit(a, held);
    }
    expect(held.size).toBeGreaterThan(0);
    expect(a.stats().placed).toBeGreaterThan(100);
  });
});

describe('task groups under contention', () => {
  it('never over-commits while groups are placed and their instances released at once', async () => {
    alloc = await Allocator.create({ nodes: nodes(6, { cpus: 4, mem: '4Gi' }), workers: 4, sampleK: 2, roundSize: 8 });
    const a = alloc;
    const held = new Map<string, Assignment & { cpu: number; mem: number }>();
    const live: { handle: number; index: number; key: string }[] = [];
    for (let wave = 0; wave < 20; wave++) {
      const waves: Promise<void>[] = [];
      for (let b = 0; b < 4; b++) {
        const cpu = [250, 500][b % 2]!;
        const mem = [128, 256][b % 2]!;
        waves.push(
          a.placeGroup({ job: `g${wave}-${b}`, role: `r${b}`, count: 12, resources: { cpus: cpu / 1000, mem, ports: 1 } }).then((r) => {
            for (let i = 0; i < r.count; i++) {
              const nodeId = r.nodes[i];
              if (nodeId === null || nodeId === undefined) continue;
              const key = `${r.handle}:${i}`;
              held.set(key, { taskId: key, nodeId, ports: [r.ports[i]!], cpu, mem });
              live.push({ handle: r.handle, index: i, key });
            }
          }),
        );
      }
      // Release about half of what is held while the groups are being placed.
      for (let k = live.length - 1; k >= 0; k -= 2) {
        const x = live[k]!;
        a.releaseInstance(x.handle, x.index);
        held.delete(x.key);
        live.splice(k, 1);
      }
      await Promise.all(waves);
      audit(a, held);
    }
    expect(a.stats().running).toBe(held.size);
  });
});

function audit(a: Allocator, held: Map<string, Assignment & { cpu: number; mem: number }>): void {
  const v = a.table.view;
  const sumCpu = new Map<string, number>();
  const sumMem = new Map<string, number>();
  const ports = new Map<string, number[]>();
  for (const h of held.values()) {
    sumCpu.set(h.nodeId, (sumCpu.get(h.nodeId) ?? 0) + h.cpu);
    sumMem.set(h.nodeId, (sumMem.get(h.nodeId) ?? 0) + h.mem);
    ports.set(h.nodeId, [...(ports.get(h.nodeId) ?? []), ...h.ports]);
  }
  for (const id of a.table.nodeIds()) {
    const row = a.table.rowOf(id);
    expect(v.state[row]).toBe(NodeState.UP);
    expect(v.usedCpu[row]!).toBeLessThanOrEqual(v.capCpu[row]!);
    expect(v.usedMem[row]!).toBeLessThanOrEqual(v.capMem[row]!);
    expect(v.usedCpu[row]).toBe(sumCpu.get(id) ?? 0);
    expect(v.usedMem[row]).toBe(sumMem.get(id) ?? 0);
    const p = ports.get(id) ?? [];
    expect(new Set(p).size).toBe(p.length);
    expect(a.table.snapshot(id).used.ports).toBe(p.length);
    expect(v.version[row]! & 1).toBe(0);
  }
}
