import { describe, expect, it } from 'vitest';
import { benchSubmit } from '../../src/master/bench-submit.js';

describe('benchSubmit', () => {
  it('measures submit -> all running through a whole master and cleans up', async () => {
    const r = await benchSubmit({ instances: 200, agents: 8, runs: 2, workers: 1, fsync: false });
    expect(r.runs).toHaveLength(2);
    for (const run of r.runs) {
      expect(run.allRunningMs).toBeGreaterThan(0);
      expect(run.allPlacedMs).toBeLessThanOrEqual(run.allRunningMs);
      expect(run.submitAckMs).toBeLessThanOrEqual(run.allRunningMs);
      expect(run.placementsPerSec).toBeGreaterThan(0);
    }
    expect(r.submitToRunningMs.p50).toBeGreaterThan(0);
    expect(r.taskRunningMs.p99).toBeLessThanOrEqual(r.submitToRunningMs.max);
  });

  it('refuses bad options', async () => {
    await expect(benchSubmit({ instances: 0 })).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
  });
});
