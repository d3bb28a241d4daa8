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

/** The states an agent reports on the way up, in order; a task only moves forward through them. */
const PROGRESS: readonly TaskStateName[] = ['staging', 'starting', 'running'];

/**
 * Whether an agent's report of `reported` for a task the master has in `current` is an older
 * progress state than the current one (STARTING after RUNNING): a resend of an update that was
 * superseded, not a transition. Terminal states and `pending` (never an agent's to report) are not
 * progress states: those stay illegal.
 */
export function isStaleProgress(current: TaskStateName, reported: TaskStateName): boolean {
  const c = PROGRESS.indexOf(current);
  const r = PROGRESS.indexOf(reported);
  return c >= 0 && r >= 0 && r < c;
}

/** What accompanies a transition: the agent's reason code (exited, killed, oom, ...), its words, the exit code. */
export interface TransitionInfo {
  reason?: string;
  message?: string;
  exitCode?: number;
}
