import { SingleBar } from 'cli-progress';
import { Allocator, type GroupResult, type PlaceResult, type TaskGroupRequest, type TaskRequest } from '../../src/allocator/allocator.js';
import type { PolicyName } from '../../src/placement/scoring/policy.js';
import { type CpuSplit, cpuSplit, threadTimes } from '../lib/thread-cpu.js';
import { auditTable } from '../lib/audit.js';
import { clusterCapacity, generateCluster } from '../lib/cluster.js';
import { type Percentiles, percentilesUs } from '../lib/report.js';
import { generateWorkload } from '../lib/workload.js';

export interface PlacementRunOptions {
  nodes: number;
  tasks: number;
  workers: number;
  selection: 'exact' | 'sampled';
  policy: PolicyName;
  sampleK: number;
  seed: number;
  /** Tasks per place() call. */
  batch: number;
  /** place() calls outstanding at once. */
  inflight: number;
  progress: boolean;
  /** `groups`: each job's instances as one placeGroup() call; `tasks`: place() with task objects. */
  api?: 'groups' | 'tasks';
  /** Tasks per worker per allocator round (the allocator's default when absent). */
  roundSize?: number;
  /** Run the workload once untimed (then release it) before the timed run; default true. */
  warm?: boolean;
}

export interface PlacementRunResult {
  scenario: 'placement';
  nodes: number;
  tasks: number;
  workers: number;
  selection: string;
  policy: string;
  api: string;
  /** Whether an untimed pass of the same workload ran first (and was released). */
  warm: boolean;
  sampleK: number;
  placed: number;
  unplaced: number;
  placementsPerSec: number;
  decisionsPerSec: number;
  wallMs: number;
  latencyUs: Percentiles;
  batchLatencyUs: Percentiles;
  conflicts: number;
  retries: number;
  /** Placement threads' busy time summed (ms): against wallMs × workers it shows their utilisation. */
  workerBusyMs: number;
  /** CPU per thread over the timed part (Linux only): where the cores went. */
  cpuMs?: CpuSplit;
  utilization: { cpus: number; mem: number };
  nodesUsed: number;
  overcommittedNodes: number;
  unplacedByCode: Record<string, number>;
}

/**
 * One placement run. The clock starts when the first task is handed to Allocator.place() and stops
 * when the last decision is back: validation, queueing, hand-off to the threads, placement and
 * commit are all inside. The cluster and tasks are generated before the clock starts.
 */
export async function runPlacement(o: PlacementRunOptions): Promise<PlacementRunResult> {
  const nodes = generateCluster(o.nodes, o.seed);
  const api = o.api ?? 'groups';
  let workload: TaskRequest[] | null = generateWorkload({ tasks: o.tasks, clusterCpus: clusterCapacity(nodes).cpus, seed: o.seed, policy: o.policy });
  const groups = api === 'groups' ? toGroups(workload) : [];
  const tasks = api === 'tasks' ? workload : [];
  // Only the form the run submits stays reachable: the generator's million task objects belong to the
  // harness, and alive they made any major collection in the timed pass mark them (~0.3 core-s).
  workload = null;
  const alloc = await Allocator.create({
    nodes,
    workers: o.workers,
    selection: o.selection,
    sampleK: o.sampleK,
    seed: o.seed,
    ...(o.roundSize !== undefined ? { roundSize: o.roundSize } : {}),
  });
  try {
    // One throwaway task through the whole path (queue, hand-off, commit).
    await alloc.place([{ id: '__warmup__', resources: { cpus: 0.001 } }]);
    alloc.release('__warmup__');
    if (o.warm !== false) {
      // The same workload once, untimed, then every placement given back: the table is empty again,
      // and V8 has compiled, deoptimised and recompiled what the run uses (a scheduler runs for days;
      // measured cold, a fresh thread spends a third of a short run compiling).
      const held: { handles: number[]; tasks: string[] } = { handles: [], tasks: [] };
      await drive(alloc, api, groups, tasks, o, {
        group: (r) => held.handles.push(r.handle),
        call: (r) => {
          for (const a of r.assignments) held.tasks.push(a.taskId);
        },
      });
      for (const h of held.handles) alloc.releaseGroup(h);
      for (const id of held.tasks) alloc.release(id);
    }
    alloc.resetLatency();
    const before = alloc.stats();

    const bar = o.progress ? new SingleBar({ format: '  {bar} {value}/{total} tasks  {eta}s left', hideCursor: true }) : null;
    bar?.start(o.tasks, 0);
    const unplacedByCode: Record<string, number> = {};
    let placed = 0;
    let unplaced = 0;
    const count = (ok: number, failed: readonly { code: string }[]): void => {
      placed += ok;
      unplaced += failed.length;
      for (const u of failed) unplacedByCode[u.code] = (unplacedByCode[u.code] ?? 0) + 1;
      bar?.update(placed + unplaced);
    };
    const threadsAtStart = threadTimes();
    const t0 = performance.now();
    await drive(alloc, api, groups, tasks, o, {
      group: (r) => count(r.placed, r.unplaced),
      call: (r) => count(r.assignments.length, r.unplaced),
    });
    const wallMs = performance.now() - t0;
    const threadsAtEnd = threadTimes();
    bar?.stop();
    const after = alloc.stats();
    const audit = auditTable(alloc);
    return {
      scenario: 'placement',
      nodes: o.nodes,
      tasks: o.tasks,
      workers: o.workers,
      selection: o.selection,
      policy: o.policy,
      api,
      warm: o.warm !== false,
      sampleK: o.sampleK,
      placed,
      unplaced,
      placementsPerSec: Math.round((placed / wallMs) * 1000),
      decisionsPerSec: Math.round(((placed + unplaced) / wallMs) * 1000),
      wallMs: Math.round(wallMs),
      latencyUs: percentilesUs(alloc.placementLatency()),
      batchLatencyUs: percentilesUs(alloc.batchLatencyNs),
      conflicts: after.conflicts - before.conflicts,
      workerBusyMs: Math.round(after.workerBusyMs - before.workerBusyMs),
      ...(threadsAtStart && threadsAtEnd ? { cpuMs: cpuSplit(threadsAtStart, threadsAtEnd, new Set(alloc.placementThreadIds())) } : {}),
      retries: after.retries - before.retries,
      utilization: { cpus: round4(audit.utilization.cpus), mem: round4(audit.utilization.mem) },
      nodesUsed: audit.nodesUsed,
      overcommittedNodes: audit.overcommittedNodes,
      unplacedByCode,
    };
  } finally {
    await alloc.close();
  }
}

interface Sink {
  group(r: GroupResult): void;
  call(r: PlaceResult): void;
}

/**
 * Hands the workload to the allocator with a bounded number of tasks outstanding: whole jobs as
 * placeGroup() calls (as many instances in flight as the task API keeps), or chunks of task objects.
 */
function drive(alloc: Allocator, api: 'groups' | 'tasks', groups: readonly TaskGroupRequest[], tasks: readonly TaskRequest[], o: PlacementRunOptions, sink: Sink): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let outstanding = 0;
    let next = 0;
    if (api === 'groups') {
      const budget = o.batch * o.inflight;
      const submit = (): void => {
        while (outstanding < budget && next < groups.length) {
          const grp = groups[next++]!;
          outstanding += grp.count;
          alloc.placeGroup(grp).then((r) => {
            outstanding -= grp.count;
            sink.group(r);
            if (next >= groups.length && outstanding === 0) resolve();
            else submit();
          }, reject);
        }
      };
      submit();
      return;
    }
    const submit = (): void => {
      while (outstanding < o.inflight && next < tasks.length) {
        const chunk = tasks.slice(next, next + o.batch);
        next += chunk.length;
        outstanding++;
        alloc.place(chunk).then((r) => {
          outstanding--;
          sink.call(r);
          if (next >= tasks.length && outstanding === 0) resolve();
          else submit();
        }, reject);
      }
    };
    submit();
  });
}

/** A job's instances (consecutive tasks of one job, identical by construction) as one group. */
export function toGroups(tasks: TaskRequest[]): TaskGroupRequest[] {
  const out: TaskGroupRequest[] = [];
  for (let i = 0; i < tasks.length; ) {
    const t = tasks[i]!;
    let j = i + 1;
    while (j < tasks.length && tasks[j]!.job === t.job) j++;
    const g: TaskGroupRequest = { count: j - i, resources: t.resources };
    if (t.job !== undefined) g.job = t.job;
    if (t.role !== undefined) g.role = t.role;
    if (t.priority !== undefined) g.priority = t.priority;
    if (t.constraints !== undefined) g.constraints = t.constraints;
    if (t.policy !== undefined) g.policy = t.policy;
    out.push(g);
    i = j;
  }
  return out;
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}
