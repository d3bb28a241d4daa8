import { describe, expect, it } from 'vitest';
import { claimOwnership } from '../../src/allocator/ownership.js';

describe('claimOwnership', () => {
  it('gives each thread its own slot while slots are free', () => {
    const slots = new Int32Array(new SharedArrayBuffer(4 * 4));
    const got = [0, 1, 2, 3].map((t) => claimOwnership(slots, 100 + t));
    expect(got.sort()).toEqual([0, 1, 2, 3]);
    expect([...slots]).toEqual([1, 1, 1, 1]);
  });

  it('shares a slot, by the fallback number, when none is free (a replaced thread)', () => {
    const slots = new Int32Array(new SharedArrayBuffer(3 * 4));
    for (let t = 0; t < 3; t++) claimOwnership(slots, t);
    expect(claimOwnership(slots, 7)).toBe(1);
    expect(claimOwnership(slots, 9)).toBe(0);
  });
});
