import { benchSubmit } from '../../src/master/bench-submit.js';
import { runPlacement } from './placement.js';

export interface SubmitRunResult {
  scenario: 'submit';
  instances: number;
  agents: number;
  runs: number;
  workers: number;
  /** submitJob() call to every instance running, over runs (ms). */
  submitToRunningMs: { p50: number; p99: number; min: number; max: number };
  /** Per instance, submit -> running (ms). */
  taskRunningMs: { p50: number; p99: number; min: number; max: number };
  /** Placements/s through the whole master: API call + journal + allocator (p50 over runs). */
  masterPlacementsPerSec: number;
  /** The same cluster size through the allocator alone, in the same process. */
  allocatorPlacementsPerSec: number;
}

/**
 * Job submission to all-instances-running for an N-instance service on simulated agents, next to
 * the allocator-only throughput for the same number of tasks, so the master's overhead shows as a
 * ratio from one run.
 */
export async function runSubmit(o: { instances: number; agents: number; runs: number; workers: number; seed: number }): Promise<SubmitRunResult> {
  const r = await benchSubmit({ instances: o.instances, agents: o.agents, runs: o.runs, workers: o.workers, warmup: true });
  const alloc = await runPlacement({
    nodes: o.agents,
    tasks: o.instances,
    workers: o.workers,
    selection: 'sampled',
    policy: 'binpack',
    sampleK: 4,
    seed: o.seed,
    batch: o.instances,
    inflight: 1,
    progress: false,
  });
  return {
    scenario: 'submit',
    instances: o.instances,
    agents: o.agents,
    runs: o.runs,
    workers: o.workers,
    submitToRunningMs: r.submitToRunningMs,
    taskRunningMs: r.taskRunningMs,
    masterPlacementsPerSec: Math.round(r.placementsPerSec.p50),
    allocatorPlacementsPerSec: alloc.placementsPerSec,
  };
}
