/**
 * The master's public contract: what the HTTP API, the CLI, the event stream and tests use.
 * The master owns jobs and the task lifecycle; everything else reads them through this.
 */
import type { ConstraintSpec } from '../placement/constraints/compile.js';
import type { PolicyName } from '../placement/scoring/policy.js';
import type { TaskStateName } from '../proto/index.js';

export type { TaskStateName };

/** A job as a user submits it (JSON or YAML), after schema validation. Aurora-style. */
export interface JobSpec {
  name: string;
  role?: string;
  type: 'service' | 'batch';
  instances: number;
  /** A shell string (`/bin/sh -c`) or an argv array (exec, no shell). */
  command: string | string[];
  env?: Record<string, string>;
  resources: { cpus: number | string; mem: number | string; disk?: number | string; gpus?: number; ports?: number };
  constraints?: ConstraintSpec[];
  priority?: number;
  placement?: PolicyName;
  healthCheck?: {
    path: string;
    /** Which assigned port to probe (index into PORT0..n). */
    portIndex?: number;
    intervalMs?: number;
    timeoutMs?: number;
    consecutiveFailures?: number;
    gracePeriodMs?: number;
  };
  restartPolicy?: {
    /** batch: attempts after the first failure; service: ignored (services are always kept at N). */
    maxRetries?: number;
    /** First restart delay; doubles per consecutive failure up to maxBackoffMs. */
    backoffMs?: number;
    maxBackoffMs?: number;
  };
  killGraceMs?: number;
  /** Traffic through the load balancer (services only). */
  http?: HttpRouteSpec;
}

/**
 * How the balancer routes to a service: requests whose Host is one of `hosts` (any host when absent) and whose
 * path starts with `pathPrefix` (default `/`) go to the service's running, healthy instances on assigned port
 * `portIndex` (default 0). `weight` is every instance's weight; without it an instance weighs its node's cpus.
 */
export interface HttpRouteSpec {
  hosts?: string[];
  pathPrefix?: string;
  portIndex?: number;
  weight?: number;
}

export type JobState = 'running' | 'finished' | 'failed' | 'killed';

export interface JobView {
  name: string;
  spec: JobSpec;
  state: JobState;
  createdAt: number;
  updatedAt: number;
  /** Task counts by state (the latest attempt of each instance only; `/v1/tasks?job=` lists every retained attempt). */
  tasks: Partial<Record<TaskStateName, number>>;
  /**
   * Instances waiting out a restart backoff after failing, with how many times in a row they have failed and when
   * the next attempt starts: a crash loop shows here (Aurora calls such tasks THROTTLED). Absent when none wait.
   */
  backingOff?: { instance: number; failuresInARow: number; restartInMs: number }[];
}

export interface TaskTransition {
  state: TaskStateName;
  at: number;
  reason?: string;
}

/** What every representation of a task carries: the view, the in-memory record, the snapshot. */
export interface TaskCore {
  id: string;
  job: string;
  instance: number;
  /** 0 for the first run of an instance, +1 per replacement. */
  attempt: number;
  state: TaskStateName;
  agentId?: string;
  host?: string;
  ports: number[];
  reason?: string;
  message?: string;
  exitCode?: number;
  history: TaskTransition[];
}

export interface TaskView extends TaskCore {
  /** host:port of the first port, when the task has ports and an agent. */
  endpoint?: string;
  /** The health checks' verdict, only while the task is running under a health-checked job (checks stop when it ends). */
  healthy?: boolean;
  /**
   * The master asked the agent to kill this task and it has not ended yet: balancers drain it (no new requests).
   * Carried in snapshots so a balancer that resyncs mid-kill still drains it (task_killing is an event only).
   */
  killing?: boolean;
}

export type AgentStateName = 'up' | 'draining' | 'lost';

/** cpus in cores, mem and disk in MiB (Mesos' units); `resources.ports` is the agent's ranges ("31000-32000"), `used.ports` a count. */
export interface AgentView {
  id: string;
  hostname: string;
  /** Where the agent says it is reachable: its advertised IP (Register.advertise_ip), without a port. */
  address: string;
  /** host:port of the agent's connection as the master sees it (a NAT or proxy may show here; the port is ephemeral). */
  peer: string;
  state: AgentStateName;
  isolation: string;
  attributes: Record<string, string>;
  resources: { cpus: number; mem: number; disk: number; gpus: number; ports: string };
  used: { cpus: number; mem: number; disk: number; gpus: number; ports: number };
  tasks: number;
  lastHeartbeatAt: number;
  registeredAt: number;
}

/** cpus in cores, mem and disk in MiB; `total` counts agents that are up or draining, not lost ones. */
export interface ClusterView {
  agents: { total: number; up: number; draining: number; lost: number };
  total: { cpus: number; mem: number; disk: number; gpus: number };
  used: { cpus: number; mem: number; disk: number; gpus: number };
  free: { cpus: number; mem: number; disk: number; gpus: number };
  /** Every task the master holds (each retained attempt, ended ones included) by state, as `/v1/tasks` lists them. */
  tasks: Partial<Record<TaskStateName, number>>;
  jobs: number;
}

/**
 * One state change, as the internal bus carries it (and later the WebSocket stream).
 * - task_state: a task transition; `state` is the new state, `data.from` the old one, plus
 *   `data.reason` / `message` / `exitCode` when the agent gave them. A new attempt appears as
 *   task_state `pending` with `data.instance` and `data.attempt`.
 * - task_placed: the pending -> staging transition (`state: 'staging'`, `agentId`, `data.host`,
 *   `data.ports`); it is the only event for that transition, so a reducer that sets a task's state
 *   from every event carrying `taskId` + `state` sees every transition exactly once.
 * - job_submitted: `data.type`, `instances`, `cpus` (per instance, cores), `resources` (as the spec wrote them) and
 *   `http` (the spec's section, if any).
 * - job_finished: `data.state` is 'finished' or 'failed'. job_scaled: `data.from`, `data.to`.
 * - agent_registered / agent_reregistered: `data.kept`, `lost`, `killed` (reconciliation counts),
 *   `cpus` (cores), `resources` ({cpus, mem, disk, gpus}) and `attributes`.
 * - task_health (`data.healthy`) and task_killing (`data.reason`) carry `taskId`, `job`, `agentId` but no
 *   `state`: they are not transitions, so the rule above holds.
 * Events are published once the change is durable in the journal, so `seq` order is commit order.
 */
export interface ClusterEvent {
  seq: number;
  at: number;
  type:
    | 'job_submitted'
    | 'job_scaled'
    | 'job_killed'
    | 'job_finished'
    | 'task_state'
    | 'task_placed'
    | 'agent_registered'
    | 'agent_reregistered'
    | 'agent_lost'
    | 'agent_draining'
    /** A drain was lifted (`data.state`: `up`, or `lost` for a lost agent whose drain mark was cleared). */
    | 'agent_undrained'
    | 'agent_removed'
    /** A task's health check result changed (`data.healthy`): the balancer adds or removes the endpoint. */
    | 'task_health'
    /** The master asked an agent to kill a task (`data.reason`): the balancer drains it (no new requests). */
    | 'task_killing'
    /** A balancer's per-service and per-endpoint figures over the last interval (`data`: BalancerStats). */
    | 'balancer_stats'
    /** Something was refused without changing state (an illegal transition an agent reported, a failed journal write); `data.code` is a BRL_ERR_* code. */
    | 'error';
  job?: string;
  taskId?: string;
  agentId?: string;
  state?: TaskStateName;
  data?: Record<string, unknown>;
}
