import { describe, expect, it } from 'vitest';
import {
  GPU_NODE_PENALTY,
  POLICY_NAMES,
  Policy,
  balancedScore,
  binpackScore,
  policyFromName,
  score,
  spreadScore,
} from '../../src/placement/scoring/index.js';
import { type Cluster, cluster, spec, use } from './helpers.js';

/** Best row id under a policy for a task, by score alone. */
function best(c: Cluster, policy: number, cpu: number, mem: number, gpu = 0): string {
  let bestId = '';
  let bestScore = -Infinity;
  for (const [id, row] of Object.entries(c.row)) {
    const s = score(policy, c.v, row, cpu, mem, gpu);
    if (s > bestScore) {
      bestScore = s;
      bestId = id;
    }
  }
  return bestId;
}

/** Three 4-cpu, 8 GiB nodes at 50%, 25% and 0% use. */
function levels(): Cluster {
  const c = cluster([spec('full', 4, 8), spec('half', 4, 8), spec('empty', 4, 8)]);
  use(c, 'full', 2000, 4096);
  use(c, 'half', 1000, 2048);
  return c;
}

describe('binpack', () => {
  it('prefers the fuller node', () => {
    const c = levels();
    const s = (id: string): number => binpackScore(c.v, c.row[id]!, 500, 1024, 0);
    expect(s('full')).toBeGreaterThan(s('half'));
    expect(s('half')).toBeGreaterThan(s('empty'));
    expect(best(c, Policy.BINPACK, 500, 1024)).toBe('full');
  });

  it('scores the mean utilisation after placement', () => {
    const c = levels();
    expect(binpackScore(c.v, c.row.full!, 500, 1024, 0)).toBeCloseTo((2500 / 4000 + 5120 / 8192) / 2, 6);
    expect(binpackScore(c.v, c.row.empty!, 4000, 8192, 0)).toBeCloseTo(1, 6);
    expect(binpackScore(c.v, c.row.empty!, 1000, 0, 0)).toBeCloseTo(0.125, 6);
  });

  it('compares nodes of different sizes by utilisation, not absolute amounts', () => {
    const c = cluster([spec('big', 64, 256), spec('small', 4, 16)]);
    use(c, 'big', 8000, 32 * 1024); // 12.5%
    use(c, 'small', 2000, 8 * 1024); // 50%
    expect(best(c, Policy.BINPACK, 1000, 1024)).toBe('small');
    expect(best(c, Policy.SPREAD, 1000, 1024)).toBe('big');
  });
});

describe('spread', () => {
  it('prefers the emptier node', () => {
    const c = levels();
    const s = (id: string): number => spreadScore(c.v, c.row[id]!, 500, 1024, 0);
    expect(s('empty')).toBeGreaterThan(s('half'));
    expect(s('half')).toBeGreaterThan(s('full'));
    expect(best(c, Policy.SPREAD, 500, 1024)).toBe('empty');
  });

  it('is one minus the binpack score', () => {
    const c = levels();
    for (const row of Object.values(c.row)) {
      expect(spreadScore(c.v, row, 700, 900, 0)).toBeCloseTo(1 - binpackScore(c.v, row, 700, 900, 0), 9);
    }
  });
});

describe('balanced', () => {
  it('prefers the node whose cpu and mem utilisation would be closest', () => {
    const c = cluster([spec('cpu-heavy', 4, 8), spec('even', 4, 8), spec('mem-heavy', 4, 8)]);
    use(c, 'cpu-heavy', 2000, 0); // after 500m/1Gi: 62.5% cpu, 12.5% mem
    use(c, 'even', 1000, 2048); // after: 37.5%, 37.5%
    use(c, 'mem-heavy', 0, 6144); // after: 12.5%, 87.5%
    const s = (id: string): number => balancedScore(c.v, c.row[id]!, 500, 1024, 0);
    expect(s('even')).toBeCloseTo(1, 9);
    expect(s('cpu-heavy')).toBeCloseTo(0.5, 9);
    expect(s('mem-heavy')).toBeCloseTo(0.25, 9);
    expect(best(c, Policy.BALANCED, 500, 1024)).toBe('even');
  });

  it('prefers the node a lopsided task evens out', () => {
    const c = cluster([spec('cpu-used', 4, 8), spec('mem-used', 4, 8)]);
    use(c, 'cpu-used', 3000, 0);
    use(c, 'mem-used', 0, 6144);
    // A memory-hungry task evens out the node whose cpu is used.
    expect(best(c, Policy.BALANCED, 0, 6144)).toBe('cpu-used');
    expect(best(c, Policy.BALANCED, 3000, 0)).toBe('mem-used');
  });
});

describe('GPU node penalty', () => {
  it('a CPU task prefers a non-GPU node even when the GPU node would be a better fit', () => {
    const c = cluster([spec('gpu', 4, 8, 2), spec('plain', 4, 8, 0)]);
    use(c, 'gpu', 3000, 6144); // binpack would love it
    for (const policy of [Policy.BINPACK, Policy.SPREAD, Policy.BALANCED]) {
      expect(best(c, policy, 500, 1024, 0), POLICY_NAMES[policy]).toBe('plain');
      expect(score(policy, c.v, c.row.gpu!, 500, 1024, 0)).toBeLessThan(score(policy, c.v, c.row.plain!, 500, 1024, 0));
    }
  });

  it('also holds for spread when the GPU node is emptier', () => {
    const c = cluster([spec('gpu', 4, 8, 2), spec('plain', 4, 8, 0)]);
    use(c, 'plain', 3500, 7000);
    expect(best(c, Policy.SPREAD, 100, 100, 0)).toBe('plain');
  });

  it('does not penalise a GPU node for a GPU task', () => {
    const c = cluster([spec('gpu', 4, 8, 2), spec('gpu-empty', 4, 8, 2)]);
    use(c, 'gpu', 3000, 6144);
    const s = binpackScore(c.v, c.row.gpu!, 500, 1024, 1);
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThanOrEqual(1);
    expect(best(c, Policy.BINPACK, 500, 1024, 1)).toBe('gpu');
    expect(best(c, Policy.SPREAD, 500, 1024, 1)).toBe('gpu-empty');
  });

  it('subtracts exactly GPU_NODE_PENALTY, which exceeds any score difference', () => {
    const c = cluster([spec('gpu', 4, 8, 2)]);
    const r = c.row.gpu!;
    expect(GPU_NODE_PENALTY).toBeGreaterThanOrEqual(1);
    expect(binpackScore(c.v, r, 500, 1024, 0)).toBeCloseTo(binpackScore(c.v, r, 500, 1024, 1) - GPU_NODE_PENALTY, 9);
    expect(spreadScore(c.v, r, 500, 1024, 0)).toBeCloseTo(spreadScore(c.v, r, 500, 1024, 1) - GPU_NODE_PENALTY, 9);
    expect(balancedScore(c.v, r, 500, 1024, 0)).toBeCloseTo(balancedScore(c.v, r, 500, 1024, 1) - GPU_NODE_PENALTY, 9);
  });
});

describe('score dispatch and policy names', () => {
  it('dispatches each policy to its scorer', () => {
    const c = levels();
    for (const row of Object.values(c.row)) {
      expect(score(Policy.BINPACK, c.v, row, 300, 700, 0)).toBe(binpackScore(c.v, row, 300, 700, 0));
      expect(score(Policy.SPREAD, c.v, row, 300, 700, 0)).toBe(spreadScore(c.v, row, 300, 700, 0));
      expect(score(Policy.BALANCED, c.v, row, 300, 700, 0)).toBe(balancedScore(c.v, row, 300, 700, 0));
    }
  });

  it('keeps scores of non-GPU nodes in [0, 1]', () => {
    const c = levels();
    for (const policy of [Policy.BINPACK, Policy.SPREAD, Policy.BALANCED]) {
      for (const row of Object.values(c.row)) {
        for (const [cpu, mem] of [
          [0, 0],
          [2000, 4096],
          [1, 8192 - 4096],
        ] as const) {
          const s = score(policy, c.v, row, cpu, mem, 0);
          expect(s).toBeGreaterThanOrEqual(-1e-9);
          expect(s).toBeLessThanOrEqual(1 + 1e-9);
        }
      }
    }
  });

  it('maps names to policies', () => {
    expect(policyFromName('binpack')).toBe(Policy.BINPACK);
    expect(policyFromName('spread')).toBe(Policy.SPREAD);
    expect(policyFromName('balanced')).toBe(Policy.BALANCED);
    expect(policyFromName('BINPACK')).toBe(-1);
    expect(policyFromName('')).toBe(-1);
  });
});
