import type { ResourceLimits, ResourceUsage } from '../isolation/types.js';

/** Either an argv array, exec'd as is with no shell, or a shell string run by `/bin/sh -c`. */
export type TaskCommand = { argv: readonly string[] } | { shell: string };

export interface TaskSpec {
  taskId: string;
  /** The job the task belongs to, exported as BOREALIS_JOB. */
  job: string;
  command: TaskCommand;
  /** The job's environment; the agent adds PATH, ports and BOREALIS_* on top. */
  env?: Readonly<Record<string, string>>;
  /** Ports assigned by the master, exported as PORT (the first) and PORT0..n. */
  ports?: readonly number[];
  limits: ResourceLimits;
}

/**
 * Lifecycle of one runner: created -> starting -> running -> [killing ->] exited. A launch that fails goes
 * starting -> exited with reason 'failed_to_start'.
 */
export type TaskState = 'created' | 'starting' | 'running' | 'killing' | 'exited';

/**
 * Why the task ended, as the master needs it:
 * - exited: the command ended on its own (any exit code or signal not sent by the agent);
 * - killed: the agent was asked to kill it;
 * - oom: it exceeded its memory limit and the kernel (cgroups) or the agent (rss-poll) killed it;
 * - unhealthy: the agent killed it because its health check failed;
 * - failed_to_start: it never ran (sandbox, command not found, isolation); `message` says why.
 */
export type ExitReason = 'exited' | 'killed' | 'oom' | 'unhealthy' | 'failed_to_start';

/** Reasons a caller may give `kill`; 'oom' is the runner's own. */
export type KillReason = 'killed' | 'unhealthy';

export interface ExitResult {
  /** The leader's exit code, or null when it died of a signal or never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  reason: ExitReason;
  message?: string;
  /** The last usage sample taken while it ran. */
  usage?: ResourceUsage;
}

export type RunnerEvents = {
  state: [state: TaskState, previous: TaskState];
  usage: [usage: ResourceUsage];
  exit: [result: ExitResult];
  /** Something went wrong that did not change the outcome (e.g. a cgroup that could not be removed). */
  warning: [message: string];
};
