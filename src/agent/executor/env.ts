/** The task's environment: deliberately not the agent's, so agent secrets and settings never leak into tasks. */

export interface TaskEnvInput {
  taskId: string;
  job: string;
  sandbox: string;
  env: Readonly<Record<string, string>>;
  ports: readonly number[];
  /** PATH inherited from the agent, so `argv: ['python3', ...]` finds what an operator would. */
  path: string;
}

/**
 * The launch trampoline's /bin/sh also exports PWD (= the sandbox), as every POSIX shell does.
 * Precedence, lowest first: PATH from the agent, then the job's own variables (a job may set its own PATH), then
 * what the agent assigns (ports, BOREALIS_*), which a job must not be able to spoof.
 */
export function buildTaskEnv(input: TaskEnvInput): Record<string, string> {
  const env: Record<string, string> = { PATH: input.path, ...input.env };
  input.ports.forEach((port, i) => {
    env[`PORT${i}`] = String(port);
  });
  if (input.ports.length > 0) env.PORT = String(input.ports[0]);
  env.BOREALIS_TASK_ID = input.taskId;
  env.BOREALIS_JOB = input.job;
  env.BOREALIS_SANDBOX = input.sandbox;
  return env;
}
