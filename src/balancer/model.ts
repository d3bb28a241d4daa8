/**
 * The reducer from cluster state to endpoint sets. It folds ClusterEvents (and resync snapshots) into the little
 * it needs — jobs with an `http` section, agents' cpus, those jobs' tasks — and keeps the EndpointRegistry equal
 * to: for every job with `http`, a service whose endpoints are its tasks that are `running` and, when health
 * checked, healthy, at host:ports[portIndex], weighing `http.weight` or else their agent's cpus.
 *
 * - task_killing: the endpoint drains (no new requests; in-flight ones finish).
 * - a terminal state (finished, failed, killed, lost): removed at once.
 * - task_health false: out; true: back in.
 * - job_killed / job_finished: the service goes (its tasks are on their way out anyway).
 *
 * Health: the master emits task_health for a health-checked task before (or with) its first `running`, since the
 * agent's first report carries a health verdict; so "healthy unless told otherwise" is exact for both kinds of job
 * and needs no knowledge of which jobs are checked.
 *
 * Snapshots are taken from live state while events are published once durable, so a snapshot can be ahead of the
 * events that follow it. Stale events are ignored: a task never moves back along pending → staging → starting →
 * running → terminal, and a terminal task id never returns.
 */
import type { AgentView, ClusterEvent, HttpRouteSpec, JobView, TaskStateName, TaskView } from '../master/types.js';
import type { EndpointRegistry } from './endpoints.js';

interface JobInfo {
  http: HttpRouteSpec;
}

interface TaskInfo {
  job: string;
  state: TaskStateName;
  agentId?: string;
  host?: string;
  ports: number[];
  healthy?: boolean;
  killing: boolean;
}

const RANK: Readonly<Record<TaskStateName, number>> = {
  pending: 0,
  staging: 1,
  starting: 2,
  running: 3,
  finished: 4,
  failed: 4,
  killed: 4,
  lost: 4,
};

/** Ended task ids remembered to ignore their stale events; past this, the oldest are forgotten. */
const ENDED_MEMORY = 100_000;

export interface Snapshot {
  jobs: readonly JobView[];
  tasks: readonly TaskView[];
  agents: readonly AgentView[];
}

export class ClusterModel {
  readonly #registry: EndpointRegistry;
  readonly #jobs = new Map<string, JobInfo>();
  readonly #agentCpus = new Map<string, number>();
  readonly #tasks = new Map<string, TaskInfo>();
  readonly #ended = new Set<string>();

  constructor(registry: EndpointRegistry) {
    this.#registry = registry;
  }

  /** Replaces everything with a full view (first load, resync); endpoints that persist keep their live counts. */
  reset(s: Snapshot): void {
    this.#jobs.clear();
    this.#agentCpus.clear();
    this.#tasks.clear();
    for (const a of s.agents) this.#agentCpus.set(a.id, a.resources.cpus);
    for (const j of s.jobs) {
      if (j.spec.http && j.state === 'running' && j.spec.type === 'service') this.#jobs.set(j.name, { http: j.spec.http });
    }
    for (const t of s.tasks) {
      if (RANK[t.state] === 4) {
        this.#remember(t.id);
        continue;
      }
      if (!this.#jobs.has(t.job)) continue;
      const info: TaskInfo = { job: t.job, state: t.state, ports: [...t.ports], killing: t.killing === true };
      if (t.agentId !== undefined) info.agentId = t.agentId;
      if (t.host !== undefined) info.host = t.host;
      if (t.healthy !== undefined) info.healthy = t.healthy;
      this.#tasks.set(t.id, info);
    }
    // Services first (removing those gone), then every endpoint from scratch.
    for (const name of [...this.#registry.services.keys()]) if (!this.#jobs.has(name)) this.#registry.removeService(name);
    for (const [name, j] of this.#jobs) this.#registry.setService(name, routeOf(j.http));
    const wanted = new Set<string>();
    for (const [id, t] of this.#tasks) if (this.#sync(id, t)) wanted.add(id);
    for (const s2 of this.#registry.services.values()) {
      for (const id of [...s2.endpoints.keys()]) if (!wanted.has(id)) this.#registry.remove(id);
    }
  }

  apply(e: ClusterEvent): void {
    switch (e.type) {
      case 'job_submitted': {
        const http = e.data?.http as HttpRouteSpec | undefined;
        if (!e.job || !http || e.data?.type !== 'service') return;
        this.#jobs.set(e.job, { http });
        this.#registry.setService(e.job, routeOf(http));
        return;
      }
      case 'job_killed':
      case 'job_finished':
        if (!e.job || !this.#jobs.delete(e.job)) return;
        for (const [id, t] of this.#tasks) if (t.job === e.job) this.#tasks.delete(id);
        this.#registry.removeService(e.job);
        return;
      case 'agent_registered':
      case 'agent_reregistered': {
        const cpus = Number(e.data?.cpus);
        if (!e.agentId || !Number.isFinite(cpus)) return;
        if (this.#agentCpus.get(e.agentId) === cpus) return;
        this.#agentCpus.set(e.agentId, cpus);
        for (const [id, t] of this.#tasks) if (t.agentId === e.agentId) this.#sync(id, t);
        return;
      }
      case 'task_state':
      case 'task_placed': {
        if (!e.taskId || !e.job || !e.state || this.#ended.has(e.taskId)) return;
        if (!this.#jobs.has(e.job)) return;
        let t = this.#tasks.get(e.taskId);
        if (t && RANK[e.state] < RANK[t.state]) return; // stale: the snapshot was ahead
        if (RANK[e.state] === 4) {
          this.#tasks.delete(e.taskId);
          this.#remember(e.taskId);
          this.#registry.remove(e.taskId);
          return;
        }
        if (!t) {
          t = { job: e.job, state: e.state, ports: [], killing: false };
          this.#tasks.set(e.taskId, t);
        }
        t.state = e.state;
        if (e.type === 'task_placed') {
          if (e.agentId) t.agentId = e.agentId;
          if (typeof e.data?.host === 'string') t.host = e.data.host;
          if (Array.isArray(e.data?.ports)) t.ports = (e.data.ports as unknown[]).map(Number);
        }
        this.#sync(e.taskId, t);
        return;
      }
      case 'task_health': {
        const t = e.taskId ? this.#tasks.get(e.taskId) : undefined;
        if (!t || typeof e.data?.healthy !== 'boolean') return;
        t.healthy = e.data.healthy;
        this.#sync(e.taskId!, t);
        return;
      }
      case 'task_killing': {
        const t = e.taskId ? this.#tasks.get(e.taskId) : undefined;
        if (!t) return;
        t.killing = true;
        this.#sync(e.taskId!, t);
        return;
      }
      default:
        return;
    }
  }

  /** Makes the registry agree with one task; returns whether it is (still) an endpoint. */
  #sync(id: string, t: TaskInfo): boolean {
    const job = this.#jobs.get(t.job);
    const port = job ? t.ports[job.http.portIndex ?? 0] : undefined;
    const serving = job !== undefined && t.state === 'running' && t.healthy !== false && t.host !== undefined && port !== undefined;
    if (!serving) {
      this.#registry.remove(id);
      return false;
    }
    if (t.killing) {
      // A task being killed never gains an endpoint; one that has it drains.
      this.#registry.drain(id);
      return this.#registry.byId.has(id);
    }
    const weight = job.http.weight ?? (t.agentId !== undefined ? this.#agentCpus.get(t.agentId) : undefined) ?? 1;
    this.#registry.upsert(t.job, { id, host: t.host!, port: port!, weight });
    return true;
  }

  #remember(id: string): void {
    this.#ended.add(id);
    if (this.#ended.size > ENDED_MEMORY) {
      const oldest = this.#ended.values().next().value;
      if (oldest !== undefined) this.#ended.delete(oldest);
    }
  }
}

function routeOf(http: HttpRouteSpec): { hosts?: string[]; pathPrefix?: string } {
  const r: { hosts?: string[]; pathPrefix?: string } = {};
  if (http.hosts && http.hosts.length > 0) r.hosts = [...http.hosts];
  if (http.pathPrefix !== undefined) r.pathPrefix = http.pathPrefix;
  return r;
}
