import { describe, expect, it } from 'vitest';
import { runPlacement } from '../../bench/scenarios/placement.js';

describe('placement benchmark run', () => {
  it('reports every decision, a full audit and where the CPU went', async () => {
    const r = await runPlacement({
      nodes: 300, tasks: 3000, workers: 2, selection: 'sampled', policy: 'binpack', sampleK: 4, seed: 7, batch: 512, inflight: 2, progress: false,
    });
    expect(r.placed + r.unplaced).toBe(3000);
    expect(r.overcommittedNodes).toBe(0);
    expect(r.placementsPerSec).toBeGreaterThan(0);
    for (const k of ['p50', 'p99', 'p999', 'max'] as const) expect(r.latencyUs[k]).toBeGreaterThan(0);
    expect(r.latencyUs.p50).toBeLessThanOrEqual(r.latencyUs.max);
    expect(r.utilization.cpus).toBeGreaterThan(0.5);
    if (process.platform === 'linux') {
      // The two threads the allocator started are found and charged separately from the caller's thread.
      expect(r.cpuMs?.placementThreadsMs).toHaveLength(2);
      expect(r.cpuMs!.allocatorThreadMs).toBeGreaterThanOrEqual(0);
    }
  });
});
