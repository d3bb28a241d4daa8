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
  if (t.healthy !== undefined) v.healthy = t.healthy;
  if (t.killRequested && !isTerminal(t.state)) v.killing = true;
  if (t.reason !== undefined) v.reason = t.reason;
  if (t.message !== undefined) v.message = t.message;
  if (t.exitCode !== undefined) v.exitCode = t.exitCode;
  return v;
}

/** Counts of the current attempt of every instance, by state. */
export function countCurrent(job: JobRecord, store: Store, into: Partial<Record<TaskStateName, number>> = {}): Partial<Record<TaskStateName, number>> {
  for (const slot of job.slots.values()) {
    if (slot.current === null) continue;
    const t = store.tasks.get(slot.current);
    if (t) into[t.state] = (into[t.state] ?? 0) + 1;
  }
  return into;
}

export function jobView(job: JobRecord, store: Store): JobView {
  return {
    name: job.name,
    spec: { ...structuredClone(job.spec), instances: job.instances },
    state: job.state,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    tasks: countCurrent(job, store),
  };
}
