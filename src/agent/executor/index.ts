/** Running tasks as real child processes: one TaskRunner per task, in its own sandbox and process group. */
export { TaskRunner } from './task-runner.js';
export type { TaskRunnerOptions } from './task-runner.js';
export type { ExitReason, ExitResult, KillReason, RunnerEvents, TaskCommand, TaskSpec, TaskState } from './types.js';
export { TypedEvents } from './events.js';
export { signalGroup } from './process-group.js';
export { buildTaskEnv } from './env.js';
export { resolveExecutable } from './command.js';
