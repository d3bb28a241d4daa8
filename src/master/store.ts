import { parseRequest, type ResourceVector } from '../resources/vector.js';
import type { TaskStateName } from '../proto/index.js';
import type { JobSnapshot, JournalEntry, StoreSnapshot, TaskSnapshot } from './journal-entries.js';
import { isOnAgent, isTerminal } from './task-states.js';
import type { JobSpec, JobState, TaskCore } from './types.js';

/**
 * Ended attempts kept per instance (for `tasks` listings and post-mortems); older ones are dropped
 * from memory and from snapshots, otherwise a crash-looping service would grow the master forever.
 */
export const RETAINED_ENDED_ATTEMPTS = 5;

export interface TaskRecord extends TaskCore {
  healthy?: boolean;
  /** The master asked for this task to end (scale down, kill, drain): its end is not a failure. */
  killRequested: boolean;
}

/** One instance of a job: its current attempt and what is left of the earlier ones. */
export interface InstanceSlot {
  instance: number;
  /** The attempt the job counts for this instance (the newest); null before the first. */
  current: string | null;
  nextAttempt: number;
  /** Attempts that failed (failed, or killed without the master asking): a batch job's retry budget. */
  failures: number;
  /** Task ids still in memory, oldest first. */
  retained: string[];
  /** Non-terminal tasks of the instance: the current one and any superseded one still being killed. */
  active: Set<string>;
  // Runtime only (not journaled): restart backoff.
  consecutive: number;
  notBefore: number;
  timer: NodeJS.Timeout | null;
}

export interface JobRecord {
  name: string;
  spec: JobSpec;
  state: JobState;
  createdAt: number;
  updatedAt: number;
  /** Desired instance count (spec.instances at submit, then scale). */
  instances: number;
  slots: Map<number, InstanceSlot>;
  /** The spec's resources in table units (derived, for launches and adoption). */
  resources: ResourceVector;
}

export function taskId(job: string, instance: number, attempt: number): string {
  return `${job}.${instance}.${attempt}`;
}

/**
 * The master's state: jobs, their instances and tasks, and the agents marked draining. Changed
 * only by `apply(entry)`, which the master calls for every journal entry it writes and which
 * recovery calls for every entry it reads, so both build the same state. `apply` never throws on
 * an entry that no longer makes sense (a journal from an older build): it skips it and says so.
 */
export class Store {
  readonly jobs = new Map<string, JobRecord>();
  readonly tasks = new Map<string, TaskRecord>();
  /** Tasks on each agent (staging, starting, running). */
  readonly byAgent = new Map<string, Set<string>>();
  readonly drained = new Set<string>();

  /** Applies one entry; returns false when it was skipped as inconsistent. */
  apply(e: JournalEntry): boolean {
    switch (e.t) {
      case 'job':
        return this.applyJob(e.spec, e.at);
      case 'scale': {
        const job = this.jobs.get(e.job);
        if (!job) return false;
        job.instances = e.instances;
        job.updatedAt = e.at;
        return true;
      }
      case 'job_state': {
        const job = this.jobs.get(e.job);
        if (!job) return false;
        job.state = e.state;
        job.updatedAt = e.at;
        return true;
      }
      case 'tasks':
        return this.applyTasks(e.job, e.list, e.at);
      case 'assign': {
        let ok = true;
        for (const [id, agentId, host, ports] of e.list) {
          const t = this.tasks.get(id);
          if (!t || t.state !== 'pending') {
            ok = false;
            continue;
          }
          t.agentId = agentId;
          t.host = host;
          t.ports = ports;
          t.message = undefined; // the "waiting for resources" note of its pending days
          t.reason = undefined;
          this.setState(t, 'staging', e.at);
          this.indexAgent(t);
        }
        return ok;
      }
      case 'state': {
        const t = this.tasks.get(e.id);
        if (!t || isTerminal(t.state)) return false;
        if (e.reason !== undefined) t.reason = e.reason;
        if (e.message !== undefined) t.message = e.message;
        if (e.exitCode !== undefined) t.exitCode = e.exitCode;
        this.setState(t, e.state, e.at, e.reason);
        return true;
      }
      case 'kill': {
        for (const id of e.ids) {
          const t = this.tasks.get(id);
          if (t) t.killRequested = true;
        }
        return true;
      }
      case 'drain':
        this.drained.add(e.agent);
        return true;
      case 'undrain':
        this.drained.delete(e.agent);
        return true;
      default:
        return false;
    }
  }

  private applyJob(spec: JobSpec, at: number): boolean {
    let resources: ResourceVector;
    try {
      resources = parseRequest(spec.resources);
    } catch {
      return false;
    }
    const old = this.jobs.get(spec.name);
    const job: JobRecord = {
      name: spec.name,
      spec,
      state: 'running',
      createdAt: at,
      updatedAt: at,
      instances: spec.instances,
      slots: new Map(),
      resources,
    };
    // Re-created over an ended job: attempts continue where the old job's stopped, so task ids stay unique forever.
    if (old) {
      for (const [i, s] of old.slots) {
        if (s.timer) clearTimeout(s.timer);
        job.slots.set(i, { ...newSlot(i), nextAttempt: s.nextAttempt, retained: s.retained });
      }
    }
    this.jobs.set(spec.name, job);
    return true;
  }

  private applyTasks(jobName: string, list: [number, number][], at: number): boolean {
    const job = this.jobs.get(jobName);
    if (!job) return false;
    for (const [instance, attempt] of list) {
      let slot = job.slots.get(instance);
      if (!slot) {
        slot = newSlot(instance);
        job.slots.set(instance, slot);
      }
      const id = taskId(jobName, instance, attempt);
      if (this.tasks.has(id)) continue;
      const t: TaskRecord = {
        id,
        job: jobName,
        instance,
        attempt,
        state: 'pending',
        ports: [],
        history: [{ state: 'pending', at }],
        killRequested: false,
      };
      this.tasks.set(id, t);
      slot.current = id;
      slot.nextAttempt = Math.max(slot.nextAttempt, attempt + 1);
      slot.retained.push(id);
      slot.active.add(id);
    }
    job.updatedAt = at;
    return true;
  }

  private setState(t: TaskRecord, state: TaskStateName, at: number, reason?: string): void {
    t.state = state;
    t.history.push(reason === undefined ? { state, at } : { state, at, reason });
    if (!isTerminal(state)) return;
    if (t.agentId !== undefined) this.byAgent.get(t.agentId)?.delete(t.id);
    const job = this.jobs.get(t.job);
    const slot = job?.slots.get(t.instance);
    if (!job || !slot) return;
    slot.active.delete(t.id);
    if (state === 'failed' || (state === 'killed' && !t.killRequested)) slot.failures++;
    this.prune(slot);
  }

  private prune(slot: InstanceSlot): void {
    let ended = 0;
    for (const id of slot.retained) if (!slot.active.has(id)) ended++;
    if (ended <= RETAINED_ENDED_ATTEMPTS) return;
    const keep: string[] = [];
    for (const id of slot.retained) {
      if (ended > RETAINED_ENDED_ATTEMPTS && !slot.active.has(id) && id !== slot.current) {
        this.tasks.delete(id);
        ended--;
      } else {
        keep.push(id);
      }
    }
    slot.retained = keep;
  }

  private indexAgent(t: TaskRecord): void {
    if (t.agentId === undefined || !isOnAgent(t.state)) return;
    let set = this.byAgent.get(t.agentId);
    if (!set) {
      set = new Set();
      this.byAgent.set(t.agentId, set);
    }
    set.add(t.id);
  }

  /** Tasks on an agent (staging, starting, running), as records. */
  tasksOnAgent(agentId: string): TaskRecord[] {
    const out: TaskRecord[] = [];
    for (const id of this.byAgent.get(agentId) ?? []) {
      const t = this.tasks.get(id);
      if (t) out.push(t);
    }
    return out;
  }

  // ---- snapshots ------------------------------------------------------------------------------

  toSnapshot(): StoreSnapshot {
    const jobs: JobSnapshot[] = [];
    for (const j of this.jobs.values()) {
      jobs.push({
        name: j.name,
        spec: j.spec,
        state: j.state,
        createdAt: j.createdAt,
        updatedAt: j.updatedAt,
        instances: j.instances,
        slots: [...j.slots.values()].map((s) => [s.instance, s.current, s.nextAttempt, s.failures, [...s.retained]]),
      });
    }
    const tasks: TaskSnapshot[] = [];
    for (const t of this.tasks.values()) {
      const { healthy: _healthy, ...rest } = t;
      tasks.push(rest);
    }
    return { format: 1, jobs, tasks, drained: [...this.drained] };
  }

  /** Replaces the whole state with a snapshot's (at open, before replaying the entries after it). */
  load(snap: StoreSnapshot): void {
    this.jobs.clear();
    this.tasks.clear();
    this.byAgent.clear();
    this.drained.clear();
    for (const t of snap.tasks) this.tasks.set(t.id, { ...t, ports: [...t.ports], history: [...t.history] });
    for (const j of snap.jobs) {
      let resources: ResourceVector;
      try {
        resources = parseRequest(j.spec.resources);
      } catch {
        continue;
      }
      const slots = new Map<number, InstanceSlot>();
      for (const [instance, current, nextAttempt, failures, retained] of j.slots) {
        const slot: InstanceSlot = { ...newSlot(instance), current, nextAttempt, failures, retained: retained.filter((id) => this.tasks.has(id)) };
        for (const id of slot.retained) if (!isTerminal(this.tasks.get(id)!.state)) slot.active.add(id);
        slots.set(instance, slot);
      }
      this.jobs.set(j.name, { name: j.name, spec: j.spec, state: j.state, createdAt: j.createdAt, updatedAt: j.updatedAt, instances: j.instances, slots, resources });
    }
    for (const t of this.tasks.values()) this.indexAgent(t);
    for (const a of snap.drained) this.drained.add(a);
  }
}

function newSlot(instance: number): InstanceSlot {
  return { instance, current: null, nextAttempt: 0, failures: 0, retained: [], active: new Set(), consecutive: 0, notBefore: 0, timer: null };
}
