import type { TaskStateName } from '../proto/index.js';
import type { JobSpec, JobState, TaskCore } from './types.js';

/**
 * What the master writes to its journal: one entry per state change, small JSON. The master
 * applies an entry to its in-memory store and appends it in the same synchronous step, and a
 * restarted master rebuilds the same store by applying the journal in order (store.ts), so the
 * live path and the recovery path are one piece of code.
 *
 * Field names are short because a busy cluster writes millions of these; they are forever (add,
 * never rename). `at` is wall-clock ms.
 */
export type JournalEntry =
  /** A job was created (or re-created over a job that had ended), state running. */
  | { t: 'job'; at: number; spec: JobSpec }
  | { t: 'scale'; at: number; job: string; instances: number }
  | { t: 'job_state'; at: number; job: string; state: JobState }
  /** New pending tasks: one per [instance, attempt]. A replacement is a new attempt of its instance. */
  | { t: 'tasks'; at: number; job: string; list: [instance: number, attempt: number][] }
  /** Placements: pending -> staging on an agent with these ports. `host` is where its endpoints are. */
  | { t: 'assign'; at: number; list: [taskId: string, agentId: string, host: string, ports: number[]][] }
  /** One task state transition. */
  | { t: 'state'; at: number; id: string; state: TaskStateName; reason?: string; message?: string; exitCode?: number }
  /** The master decided to kill these tasks (scale down, job kill, drain, user kill): no longer wanted as they are. */
  | { t: 'kill'; at: number; ids: string[] }
  /** An agent is draining; survives restarts so a drained agent stays drained when it re-registers. */
  | { t: 'drain'; at: number; agent: string }
  /** An agent's drain was lifted: it takes placements again, and re-registers up after a restart. */
  | { t: 'undrain'; at: number; agent: string };

export interface TaskSnapshot extends TaskCore {
  killRequested: boolean;
}

export interface JobSnapshot {
  name: string;
  spec: JobSpec;
  state: JobState;
  createdAt: number;
  updatedAt: number;
  instances: number;
  /** [instance, current task id, next attempt, failures, retained task ids oldest first] */
  slots: [number, string | null, number, number, string[]][];
}

/** The compaction snapshot: the whole store as of a journal seq. */
export interface StoreSnapshot {
  format: 1;
  jobs: JobSnapshot[];
  tasks: TaskSnapshot[];
  drained: string[];
}
