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
}

export type JobState = 'running' | 'finished' | 'failed' | 'killed';

export interface JobView {
  name: string;
  spec: JobSpec;
  state: JobState;
  createdAt: number;
  updatedAt: number;
  /** Task counts by state (current attempts only). */
  tasks: Partial<Record<TaskStateName, number>>;
}

export interface TaskTransition {
  state: TaskStateName;
  at: number;
  reason?: string;
}

export interface TaskView {
  id: string;
  job: string;
  instance: number;
  /** 0 for the first run of an instance, +1 per replacement. */
  attempt: number;
  state: TaskStateName;
  agentId?: string;
  host?: string;
  ports: number[];
  /** host:port of the first port, when the task has ports and an agent. */
  endpoint?: string;
  healthy?: boolean;
  reason?: string;
  message?: string;
  exitCode?: number;
  history: TaskTransition[];
}

export type AgentStateName = 'up' | 'draining' | 'lost';

export interface AgentView {
  id: string;
  hostname: string;
  address: string;
  state: AgentStateName;
  isolation: string;
  attributes: Record<string, string>;
  resources: { cpus: number; mem: number; disk: number; gpus: number; ports: string };
  used: { cpus: number; mem: number; disk: number; gpus: number; ports: number };
  tasks: number;
  lastHeartbeatAt: number;
  registeredAt: number;
}

export interface ClusterView {
  agents: { total: number; up: number; draining: number; lost: number };
  total: { cpus: number; mem: number; disk: number; gpus: number };
  used: { cpus: number; mem: number; disk: number; gpus: number };
  free: { cpus: number; mem: number; disk: number; gpus: number };
  tasks: Partial<Record<TaskStateName, number>>;
  jobs: number;
}

/** One state change, as the internal bus carries it (and later the WebSocket stream). */
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
    | 'agent_removed';
  job?: string;
  taskId?: string;
  agentId?: string;
  state?: TaskStateName;
  data?: Record<string, unknown>;
}
