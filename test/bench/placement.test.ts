import { describe, expect, it } from 'vitest';
import { runPlacement } from '../../bench/scenarios/placement.js';

describe('placement benchmark run', () => {
  it('reports every decision, a full audit and where the CPU went', async () => {
    const r = await runPlacement({
      nodes: 300, tasks: 3000, workers: 2, selection: 'sampled', policy: 'binpack', sampleK: 4, seed: 7, batch: 512, inflight: 2, progress: false,
    });
    expect(r.warm).toBe(true);
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

  it('gives back everything the untimed pass placed: the timed pass sees the same empty cluster', async () => {
    const common = { nodes: 200, tasks: 2500, workers: 1, selection: 'sampled', policy: 'binpack', sampleK: 4, seed: 3, batch: 256, inflight: 2, progress: false } as const;
    for (const api of ['groups', 'tasks'] as const) {
      const cold = await runPlacement({ ...common, api, warm: false });
      const warm = await runPlacement({ ...common, api });
      expect(cold.warm).toBe(false);
      // The workload asks for 105% of the cluster: on a table the first pass left full, the timed
      // pass would place almost nothing. (Not equal: the thread's random draws continue, and which
      // tasks fit at the end of a full cluster varies by a few percent; utilisation, below, barely.)
      expect(warm.placed).toBeGreaterThan(cold.placed * 0.9);
      expect(warm.utilization.cpus).toBeLessThanOrEqual(1);
      expect(Math.abs(warm.utilization.cpus - cold.utilization.cpus)).toBeLessThan(0.02);
      expect(warm.overcommittedNodes).toBe(0);
    }
  });
});

describe('placement benchmark command, --runs', () => {
  it('runs a configuration N times and reports the median run with every run’s rate', async () => {
    const { execFile } = await import('node:child_process');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '..', '..');
    const args = ['--import', 'tsx', join(root, 'bench', 'scheduling.ts'), '--scenario', 'placement', '--nodes', '200', '--tasks', '1500', '--workers', '1', '--runs', '3', '--json'];
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, args, { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
    );
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as { runs: number; placementsPerSec: number; placementsPerSecRuns: number[]; overcommittedNodes: number; placed: number };
    expect(r.runs).toBe(3);
    expect(r.placementsPerSecRuns).toHaveLength(3);
    const sorted = [...r.placementsPerSecRuns].sort((a, b) => a - b);
    expect(r.placementsPerSec).toBe(sorted[1]);
    expect(r.overcommittedNodes).toBe(0);
    expect(r.placed).toBeGreaterThan(0);
  });
});
