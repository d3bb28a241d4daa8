import type { TaskStateName } from '../proto/index.js';

/**
 * The task state machine (Mesos' TaskState, Aurora's lifecycle):
 *
 *   pending ──► staging ──► starting ──► running ──► finished | failed | killed | lost
 *      │           │            │
 *      └─► killed  └────────────┴─► finished | failed | killed | lost
 *
 * pending: waiting for a placement (the master only). staging: assigned and sent to an agent.
 * starting/running: as the agent reports them. The four terminal states are final: a task that is
 * replaced gets a new id (a new attempt), so no state ever goes back.
 *
 * staging -> running and staging/starting -> finished are allowed because an agent may coalesce
 * updates of a task that starts (or exits) faster than it reports. pending goes nowhere but staging
 * (a placement) or killed (withdrawn before placement): only an agent can fail or lose a task.
 */
const TRANSITIONS: Readonly<Record<TaskStateName, readonly TaskStateName[]>> = {
  pending: ['staging', 'killed'],
  staging: ['starting', 'running', 'finished', 'failed', 'killed', 'lost'],
  starting: ['running', 'finished', 'failed', 'killed', 'lost'],
  running: ['finished', 'failed', 'killed', 'lost'],
  finished: [],
  failed: [],
  killed: [],
  lost: [],
};

const TERMINAL: ReadonlySet<TaskStateName> = new Set(['finished', 'failed', 'killed', 'lost']);

/** States in which a task is on an agent (holds resources there and may be running). */
const ON_AGENT: ReadonlySet<TaskStateName> = new Set(['staging', 'starting', 'running']);

export function canTransition(from: TaskStateName, to: TaskStateName): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(s: TaskStateName): boolean {
  return TERMINAL.has(s);
}

export function isOnAgent(s: TaskStateName): boolean {
  return ON_AGENT.has(s);
}

/** What accompanies a transition: the agent's reason code (exited, killed, oom, ...), its words, the exit code. */
export interface TransitionInfo {
  reason?: string;
  message?: string;
  exitCode?: number;
}
