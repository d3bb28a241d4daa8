import type { TaskStateName } from '../proto/index.js';
import type { JobRecord, Store, TaskRecord } from './store.js';
import { isTerminal } from './task-states.js';
import type { JobView, TaskView } from './types.js';

/** Read-only copies for callers: nothing they hold can change the master's state. */
export function taskView(t: TaskRecord): TaskView {
  const v: TaskView = {
    id: t.id,
    job: t.job,
    instance: t.instance,
    attempt: t.attempt,
    state: t.state,
    ports: [...t.ports],
    history: t.history.map((h) => ({ ...h })),
  };
  if (t.agentId !== undefined) v.agentId = t.agentId;
  if (t.host !== undefined) v.host = t.host;
  if (t.host !== undefined && t.ports.length > 0) v.endpoint = `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.ports[0]}`;
  // A verdict of the checks on a running task only: they stop when it ends, so an ended task's last
  // verdict (often `true`: the agent reports a failure as a transition, not a health change) is stale.
  if (t.healthy !== undefined && t.state === 'running') v.healthy = t.healthy;
  if (t.killRequested && !isTerminal(t.state)) v.killing = true;
  if (t.reason !== undefined) v.reason = t.reason;
  if (t.message !== undefined) v.message = t.message;
  if (t.exitCode !== undefined) v.exitCode = t.exitCode;
  return v;
}

type TaskCounts = Partial<Record<TaskStateName, number>>;

/**
 * The latest attempt of each instance of a job, by state: what its instances are doing now
 * (JobView.tasks), so a crash-looping instance counts once however many attempts it left behind.
 */
export function countLatest(job: JobRecord, store: Store, into: TaskCounts = {}): TaskCounts {
  for (const slot of job.slots.values()) {
    if (slot.current === null) continue;
    const t = store.tasks.get(slot.current);
    if (t) into[t.state] = (into[t.state] ?? 0) + 1;
  }
  return into;
}

/**
 * Every task of a job the master still holds (each retained attempt, ended ones included), by
 * state: the tasks `/v1/tasks` lists, as Mesos counts a master's tasks by state over all it still
 * knows, terminal ones included. Cluster-wide figures (`/metrics` borealis_tasks, ClusterView.tasks)
 * use this, so they agree with the task listing; a superseded attempt still being killed counts too,
 * since it still holds resources on its agent.
 */
export function countHeld(job: JobRecord, store: Store, into: TaskCounts = {}): TaskCounts {
  for (const slot of job.slots.values()) {
    for (const id of slot.retained) {
      const t = store.tasks.get(id);
      if (t) into[t.state] = (into[t.state] ?? 0) + 1;
    }
  }
  return into;
}

export function jobView(job: JobRecord, store: Store): JobView {
  const view: JobView = {
    name: job.name,
    spec: { ...structuredClone(job.spec), instances: job.instances },
    state: job.state,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    tasks: countLatest(job, store),
  };
  // A slot's timer runs only while its replacement waits out the restart backoff (master.ts convergeInstance).
  const now = performance.now();
  const backingOff: NonNullable<JobView['backingOff']> = [];
  for (const slot of job.slots.values()) {
    if (slot.timer !== null) backingOff.push({ instance: slot.instance, failuresInARow: slot.consecutive, restartInMs: Math.max(0, Math.round(slot.notBefore - now)) });
  }
  if (backingOff.length > 0) view.backingOff = backingOff.sort((a, b) => a.instance - b.instance);
  return view;
}
