import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { InvalidArgumentError } from '../api/errors.js';
import { Master } from './master.js';
import { SimAgent } from './testing/sim-agent.js';
import type { ClusterEvent } from './types.js';

export interface BenchSubmitOptions {
  /** Instances of the one service submitted per run. */
  instances?: number;
  /** Simulated agents, sized so the service fills ~80% of the cluster's cpus. */
  agents?: number;
  /** Fresh master, journal and agents per run. */
  runs?: number;
  /** fdatasync the journal (the production setting). */
  fsync?: boolean;
  /** Allocator threads (default: one per core). */
  workers?: number;
  /** Task ports per instance: ports make placement and launches do real work. */
  portsPerTask?: number;
  /** A small job placed and killed before the measured one, so thread start-up and JIT are not measured. */
  warmup?: boolean;
  /** Where the per-run journals go (a temp dir by default, removed afterwards). */
  dir?: string;
  /** Called after each run (progress output). */
  onRun?: (run: BenchSubmitRun, index: number) => void;
}

export interface BenchSubmitRun {
  /** submitJob() call to its resolution (validated and durable). */
  submitAckMs: number;
  /** submitJob() call to the last task_placed event. */
  allPlacedMs: number;
  /** submitJob() call to the last instance reported running. */
  allRunningMs: number;
  /** Instances / allPlacedMs: placements per second through the whole master. */
  placementsPerSec: number;
  /** Per instance, submit -> running. */
  taskRunningP50Ms: number;
  taskRunningP99Ms: number;
  journalBatches: number;
}

export interface Percentiles {
  p50: number;
  p99: number;
  min: number;
  max: number;
}

export interface BenchSubmitResult {
  options: { instances: number; agents: number; runs: number; fsync: boolean; workers: number | 'default' };
  runs: BenchSubmitRun[];
  /** Over runs: submit -> all instances running. */
  submitToRunningMs: Percentiles;
  placementsPerSec: Percentiles;
  /** Over every instance of every run: submit -> that instance running. */
  taskRunningMs: Percentiles;
}

/** 20% headroom: the allocator should not be measured on a cluster filled to the last millicore. */
const CLUSTER_HEADROOM = 1.25;
const TASK_CPUS_MILLI = 250;
const TASK_MEM_MIB = 256;
/** A run that has not finished in this long is broken, not slow. */
const RUN_TIMEOUT_MS = 120_000;

/**
 * The submit benchmark (issue 4): a master with in-process simulated agents, one N-instance
 * service submitted through the master's API call, timed from the call to every instance running,
 * so the figure includes validation, the journal (group commit, fsync), batching into the
 * allocator, placement, launch messages, agent status updates and their journaling.
 */
export async function benchSubmit(opts: BenchSubmitOptions = {}): Promise<BenchSubmitResult> {
  const instances = opts.instances ?? 1000;
  const agents = opts.agents ?? 50;
  const runs = opts.runs ?? 1;
  const fsync = opts.fsync ?? true;
  for (const [k, v] of Object.entries({ instances, agents, runs })) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`${k} must be a positive integer, got ${v}`);
  }
  const base = opts.dir ?? (await mkdtemp(join(tmpdir(), 'borealis-bench-submit-')));
  const results: BenchSubmitRun[] = [];
  const allTaskMs: number[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const run = await oneRun(join(base, `run-${r}`), instances, agents, fsync, opts, allTaskMs);
      results.push(run);
      opts.onRun?.(run, r);
    }
  } finally {
    if (opts.dir === undefined) await rm(base, { recursive: true, force: true });
  }
  return {
    options: { instances, agents, runs, fsync, workers: opts.workers ?? 'default' },
    runs: results,
    submitToRunningMs: percentiles(results.map((x) => x.allRunningMs)),
    placementsPerSec: percentiles(results.map((x) => x.placementsPerSec)),
    taskRunningMs: percentiles(allTaskMs),
  };
}

async function oneRun(
  dataDir: string,
  instances: number,
  agentCount: number,
  fsync: boolean,
  opts: BenchSubmitOptions,
  allTaskMs: number[],
): Promise<BenchSubmitRun> {
  const master = await Master.open({
    dataDir,
    fsync,
    logger: pino({ level: 'silent' }),
    ...(opts.workers === undefined ? {} : { allocator: { workers: opts.workers } }),
  });
  const perAgentCpus = Math.ceil((instances * TASK_CPUS_MILLI * CLUSTER_HEADROOM) / agentCount / 1000) * 1000;
  const perAgentMem = Math.ceil((instances * TASK_MEM_MIB * CLUSTER_HEADROOM) / agentCount);
  const ports = opts.portsPerTask ?? 1;
  const sims: SimAgent[] = [];
  try {
    for (let i = 0; i < agentCount; i++) {
      sims.push(
        new SimAgent({
          id: `sim-${i}`,
          cpusMilli: perAgentCpus,
          memMib: perAgentMem,
          ports: [{ begin: 31000, end: 31999 }],
          attributes: { zone: `z${i % 3}` },
        }),
      );
    }
    await Promise.all(sims.map((s) => s.connect(master)));
    const resources = { cpus: `${TASK_CPUS_MILLI}m`, mem: TASK_MEM_MIB, ports };
    if (opts.warmup !== false) {
      const warm = Math.min(instances, 50);
      const done = untilRunning(master, 'warmup', warm);
      await master.submitJob({ name: 'warmup', type: 'service', instances: warm, command: 'true', resources });
      await done.promise;
      await master.killJob('warmup');
      await waitQuiet(master, 'warmup');
    }
    const batchesBefore = journalBatches(master);
    const watch = untilRunning(master, 'bench', instances);
    const t0 = performance.now();
    await master.submitJob({ name: 'bench', type: 'service', instances, command: ['sleep', 'infinity'], resources });
    const submitAckMs = performance.now() - t0;
    const { lastPlaced, lastRunning, perTask } = await watch.promise;
    for (const at of perTask) allTaskMs.push(at - t0);
    const allPlacedMs = lastPlaced - t0;
    const taskMs = perTask.map((at) => at - t0).sort((a, b) => a - b);
    return {
      submitAckMs,
      allPlacedMs,
      allRunningMs: lastRunning - t0,
      placementsPerSec: instances / (allPlacedMs / 1000),
      taskRunningP50Ms: quantile(taskMs, 0.5),
      taskRunningP99Ms: quantile(taskMs, 0.99),
      journalBatches: journalBatches(master) - batchesBefore,
    };
  } finally {
    for (const s of sims) s.stop();
    await master.close();
  }
}

/** Resolves when `n` tasks of `job` have reported running, with when each did (performance.now()). */
function untilRunning(master: Master, job: string, n: number): { promise: Promise<{ lastPlaced: number; lastRunning: number; perTask: number[] }> } {
  let off: () => void = () => {};
  const promise = new Promise<{ lastPlaced: number; lastRunning: number; perTask: number[] }>((resolve, reject) => {
    const perTask: number[] = [];
    let lastPlaced = 0;
    const timer = setTimeout(() => {
      off();
      reject(new Error(`benchmark run timed out: ${perTask.length}/${n} running after ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    off = master.events.subscribe((e: ClusterEvent) => {
      if (e.job !== job) return;
      if (e.type === 'task_placed') lastPlaced = performance.now();
      else if (e.type === 'task_state' && e.state === 'running') {
        perTask.push(performance.now());
        if (perTask.length === n) {
          clearTimeout(timer);
          off();
          resolve({ lastPlaced, lastRunning: perTask[perTask.length - 1]!, perTask });
        }
      }
    });
  });
  return { promise };
}

async function waitQuiet(master: Master, job: string): Promise<void> {
  const deadline = performance.now() + RUN_TIMEOUT_MS;
  while (master.listTasks(job).some((t) => t.state !== 'killed')) {
    if (performance.now() > deadline) throw new Error(`warm-up job ${job} did not stop`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function journalBatches(master: Master): number {
  return master.journalStats().batches;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p99: quantile(s, 0.99), min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN };
}
