import { afterEach, describe, expect, it } from 'vitest';
import { Allocator } from '../../src/allocator/allocator.js';
import { nodes } from './helpers.js';

const tiny = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, resources: { cpus: 0.01, mem: 16 } }));

describe('Allocator rounds', () => {
  let a: Allocator | null = null;
  afterEach(async () => {
    await a?.close();
    a = null;
  });

  it('shares a batch among idle threads, and keeps a small one in one round', async () => {
    a = await Allocator.create({ nodes: nodes(8), workers: 2 });
    const r0 = a.stats().rounds;
    const big = await a.place(tiny(600, 'b'));
    expect(big.unplaced).toEqual([]);
    expect(a.stats().rounds - r0).toBe(2);
    const r1 = a.stats().rounds;
    const small = await a.place(tiny(100, 's'));
    expect(small.assignments).toHaveLength(100);
    expect(a.stats().rounds - r1).toBe(1);
  });

  it('fills rounds to roundSize while every thread has one', async () => {
    a = await Allocator.create({ nodes: nodes(8), workers: 1, roundSize: 64 });
    const r0 = a.stats().rounds;
    const r = await a.place(tiny(640, 't'));
    expect(r.assignments).toHaveLength(640);
    expect(a.stats().rounds - r0).toBe(10);
  });
});
