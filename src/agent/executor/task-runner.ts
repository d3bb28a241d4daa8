/**
 * TaskRunner runs one task: sandbox, isolation, spawn, usage sampling, kill with escalation, and one final
 * ExitResult. It never throws for run-time failures (those end as reason 'failed_to_start'); only caller errors
 * (a bad spec or options, starting twice) throw, as BorealisErrors.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { InvalidArgumentError } from '../../api/errors.js';
import type { Isolator, IsolatorHandle, ResourceUsage } from '../isolation/types.js';
import { liveIdentity } from '../isolation/proc.js';
import { removeCheckpoint, selfIdentity, writeCheckpoint } from './checkpoint.js';
import { commandArgv, resolveExecutable, SHELL, trampolineArgs } from './command.js';
import { buildTaskEnv } from './env.js';
import { TypedEvents } from './events.js';
import { signalGroup } from './process-group.js';
import { DEFAULT_MAX_LOG_BYTES, boundLogs } from './log-bound.js';
import { openSandbox, sandboxDir } from './sandbox.js';
import type { Sandbox } from './sandbox.js';
import { checkTaskSpec } from './spec.js';
import type { ExitReason, ExitResult, KillReason, RunnerEvents, TaskSpec, TaskState } from './types.js';

export interface TaskRunnerOptions {
  /** Parent of every task's sandbox. */
  workDir: string;
  isolator: Isolator;
  /** Time between SIGTERM and SIGKILL when killing. */
  killGracePeriodMs?: number;
  /** How often usage is sampled (and, under cgroups, how soon an OOM kill of a non-leader is noticed). */
  usageIntervalMs?: number;
  /** PATH given to tasks; default the agent's own. */
  path?: string;
  /** Bound on each of the task's stdout and stderr files (log-bound.ts); DEFAULT_MAX_LOG_BYTES when absent. */
  maxLogBytes?: number;
  /**
   * Where the task's process identity is checkpointed while it runs (see checkpoint.ts), so that a later run of
   * the agent can kill it if this one dies. None when absent.
   */
  checkpointDir?: string;
}

type FilledOptions = Required<Omit<TaskRunnerOptions, 'checkpointDir'>> & { checkpointDir: string | undefined };

const DEFAULTS = {
  /** Long enough for a server to finish in-flight requests after SIGTERM, short enough to free resources soon. */
  killGracePeriodMs: 5_000,
  /** Once a second keeps a usage stream cheap even with hundreds of tasks per agent. */
  usageIntervalMs: 1_000,
  /** Used only when the agent itself has no PATH. */
  path: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
} as const;

/** A failure of one launch step, carrying the message the master will show. */
class StartFailure extends Error {}

export class TaskRunner {
  readonly spec: TaskSpec;
  /** `<workDir>/<taskId>`: the task's cwd, holding its stdout and stderr files. */
  readonly sandbox: string;
  /** Settles once, when the task has ended and its isolation is torn down. Never rejects. */
  readonly exited: Promise<ExitResult>;

  readonly #opts: FilledOptions;
  readonly #events = new TypedEvents<RunnerEvents>();
  #state: TaskState = 'created';
  #resolveExit!: (result: ExitResult) => void;
  #launchSettled!: () => void;
  readonly #launchDone: Promise<void>;
  #child: ChildProcess | undefined;
  #leaderExited = false;
  #handle: IsolatorHandle | undefined;
  #killReason: KillReason | 'oom' | undefined;
  #startFailure: string | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #sampler: NodeJS.Timeout | undefined;
  #sampling = false;
  #usage: ResourceUsage | undefined;
  #finishing = false;
  #checkpointed = false;

  constructor(spec: TaskSpec, opts: TaskRunnerOptions) {
    this.spec = checkTaskSpec(spec);
    this.#opts = checkOptions(opts);
    this.sandbox = sandboxDir(this.#opts.workDir, spec.taskId);
    this.exited = new Promise((resolve) => {
      this.#resolveExit = resolve;
    });
    this.#launchDone = new Promise((resolve) => {
      this.#launchSettled = resolve;
    });
  }

  get state(): TaskState {
    return this.#state;
  }

  /** The leader's pid (also the process group id), once spawned. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The latest usage sample, if one was taken yet. */
  get usage(): ResourceUsage | undefined {
    return this.#usage;
  }

  on<K extends keyof RunnerEvents>(event: K, listener: (...args: RunnerEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** Launches the task; resolves once it is running or has failed to start (see `exited` for which). */
  start(): Promise<void> {
    if (this.#state !== 'created') {
      throw new InvalidArgumentError(`task ${this.spec.taskId} was already started (state ${this.#state})`);
    }
    this.#setState('starting');
    return this.#launch();
  }

  /**
   * Stops the task: SIGTERM to its whole process group, then SIGKILL to the group after the grace period if the
   * leader is still there. Resolves with the final result; calling it again, or after exit, is harmless.
   */
  kill(reason: KillReason = 'killed', opts: { gracePeriodMs?: number } = {}): Promise<ExitResult> {
    const grace = opts.gracePeriodMs ?? this.#opts.killGracePeriodMs;
    if (!Number.isFinite(grace) || grace < 0) {
      throw new InvalidArgumentError(`grace period ${grace} ms must be >= 0`, [{ path: 'gracePeriodMs', message: 'must be >= 0' }]);
    }
    this.#requestKill(reason, grace);
    return this.exited;
  }

  async #launch(): Promise<void> {
    const { spec } = this;
    const isolator = this.#opts.isolator;
    let sandbox: Sandbox | undefined;
    try {
      sandbox = await step(() => openSandbox(this.#opts.workDir, spec.taskId), `cannot create sandbox ${this.sandbox}`);
      const argv = commandArgv(spec.command);
      const env = buildTaskEnv({
        taskId: spec.taskId,
        job: spec.job,
        sandbox: sandbox.dir,
        env: spec.env ?? {},
        ports: spec.ports ?? [],
        path: this.#opts.path,
      });
      const executable = await resolveExecutable(argv[0]!, env.PATH!, sandbox.dir);
      if (executable === undefined) throw new StartFailure(`command not found or not executable: ${argv[0]}`);
      // Some /bin/sh builtins take options ("exec -a" in bash), so a name starting with '-' goes by its path.
      if (argv[0]!.startsWith('-')) argv[0] = executable;
      this.#handle = await step(() => isolator.prepare(spec.taskId, spec.limits), `isolation (${isolator.name}) failed`);
      if (this.#killReason !== undefined) return; // killed while starting: never spawn

      const child = this.#spawn(argv, env, sandbox);
      const pid = child.pid;
      if (pid === undefined) {
        const err = await new Promise<Error>((resolve) => child.once('error', resolve));
        throw new StartFailure(`cannot spawn ${SHELL}: ${err.message}`);
      }
      await step(() => isolator.attach(this.#handle!, pid), `isolation (${isolator.name}) could not attach pid ${pid}`);
      // Before "go": a task whose command runs has a checkpoint, so no agent death can leave it unrecorded.
      const checkpointDir = this.#opts.checkpointDir;
      if (checkpointDir !== undefined) await step(() => this.#checkpoint(checkpointDir, pid), 'cannot checkpoint the task');

      // Go: the trampoline execs the real command now that it is inside its cgroup.
      // Our end is closed once the line is flushed (the trampoline can still read it), so no descriptor stays
      // open per task for the agent's lifetime.
      const control = child.stdio[3];
      if (control instanceof Writable) control.end('go\n', () => control.destroy());
      if (this.#state === 'starting') this.#setState('running');
      this.#sampler = setInterval(() => void this.#sample(), this.#opts.usageIntervalMs);
      this.#sampler.unref(); // the child keeps the agent alive, not the sampler
      void this.#sample();
    } catch (err) {
      this.#startFailure = err instanceof Error ? err.message : String(err);
    } finally {
      // The child holds its own copies of the log descriptors.
      await sandbox?.stdout.close().catch(() => undefined);
      await sandbox?.stderr.close().catch(() => undefined);
      this.#launchSettled();
    }
    if (this.#child?.pid !== undefined && this.#startFailure !== undefined && !this.#leaderExited) {
      this.#signal('SIGKILL'); // its exit finishes the runner
    } else if (this.#child?.pid === undefined && (this.#startFailure !== undefined || this.#killReason !== undefined)) {
      void this.#finish(null, null);
    }
  }

  async #checkpoint(dir: string, pid: number): Promise<void> {
    // The trampoline is blocked on its go line, so this is the process the task's command will run in.
    const leader = await liveIdentity(pid);
    if (leader === undefined) throw new Error(`pid ${pid} exited before it could be recorded`);
    await writeCheckpoint(dir, {
      version: 1,
      taskId: this.spec.taskId,
      leader,
      pgid: pid,
      cgroups: [...(this.#handle?.dirs ?? [])],
      agent: await selfIdentity(),
      launchedAtMs: Date.now(),
    });
    this.#checkpointed = true;
  }

  #spawn(argv: readonly string[], env: Record<string, string>, sandbox: Sandbox): ChildProcess {
    let child: ChildProcess;
    try {
      child = spawn(SHELL, trampolineArgs(argv), {
        cwd: sandbox.dir,
        env,
        // Own session and process group, so kill reaches every descendant (see process-group.ts), and a signal
        // aimed at the agent's terminal group (Ctrl-C) does not hit tasks.
        detached: true,
        // fd 3 is the trampoline's go channel; stdin is /dev/null.
        stdio: ['ignore', sandbox.stdout.fd, sandbox.stderr.fd, 'pipe'],
      });
    } catch (err) {
      throw new StartFailure(`cannot spawn ${SHELL}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.#child = child;
    child.on('error', () => undefined); // spawn failures are handled through child.pid in #launch
    const control = child.stdio[3];
    // EPIPE if the trampoline died before reading "go"; its exit is reported through 'exit'.
    if (control) control.on('error', () => undefined);
    if (child.pid !== undefined) child.once('exit', (code, signal) => this.#onLeaderExit(code, signal));
    return child;
  }

  #onLeaderExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#leaderExited = true;
    clearTimeout(this.#graceTimer);
    // The task is over when its leader is; whatever it left in its group goes too. Done synchronously, in the
    // same tick that reaped the leader, so the group id cannot have been reused by an unrelated process.
    this.#signal('SIGKILL');
    void this.#finish(code, signal);
  }

  async #finish(exitCode: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.#finishing) return;
    this.#finishing = true;
    await this.#launchDone; // never tear isolation down under a launch step still in flight
    clearInterval(this.#sampler);
    clearTimeout(this.#graceTimer);
    this.#child?.stdio[3]?.destroy(); // when the launch failed before "go"
    const isolator = this.#opts.isolator;
    const handle = this.#handle;
    let reason: ExitReason;
    let message = this.#startFailure;
    // A kill wins over a start failure: killing a starting task is what makes its attach fail.
    if (this.#killReason !== undefined) reason = this.#killReason;
    else if (message !== undefined) reason = 'failed_to_start';
    else if (handle !== undefined && (await isolator.wasOomKilled(handle, signal).catch(() => false))) reason = 'oom';
    else reason = 'exited';
    if (reason === 'oom') message = `memory limit of ${this.spec.limits.memMiB} MiB exceeded (${isolator.name})`;
    if (handle !== undefined) {
      try {
        await isolator.destroy(handle);
      } catch (err) {
        this.#events.emit('warning', `isolation cleanup of ${this.spec.taskId} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    // Last, once nothing of the task is left for a later agent run to kill.
    if (this.#checkpointed && this.#opts.checkpointDir !== undefined) {
      try {
        await removeCheckpoint(this.#opts.checkpointDir, this.spec.taskId);
      } catch (err) {
        this.#events.emit('warning', `cannot remove the checkpoint of ${this.spec.taskId}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const result: ExitResult = { exitCode, signal, reason };
    if (message !== undefined) result.message = message;
    if (this.#usage !== undefined) result.usage = this.#usage;
    this.#setState('exited');
    this.#events.emit('exit', result);
    this.#resolveExit(result);
  }

  #requestKill(reason: KillReason | 'oom', graceMs: number): void {
    if (this.#state === 'exited' || this.#finishing) return;
    this.#killReason ??= reason;
    if (this.#state === 'created') {
      this.#launchSettled();
      void this.#finish(null, null);
      return;
    }
    if (this.#child?.pid === undefined || this.#leaderExited) return; // the launch notices before spawning
    if (reason === 'oom' || graceMs === 0) {
      // Out of memory there is nothing to wait for: a graceful shutdown would only allocate more.
      this.#signal('SIGKILL');
    } else if (this.#state !== 'killing') {
      this.#signal('SIGTERM');
      this.#graceTimer = setTimeout(() => this.#signal('SIGKILL'), graceMs);
    }
    if (this.#state === 'starting' || this.#state === 'running') this.#setState('killing');
  }

  async #sample(): Promise<void> {
    const handle = this.#handle;
    if (this.#sampling || handle === undefined || this.#finishing) return;
    this.#sampling = true;
    try {
      const usage = await this.#opts.isolator.usage(handle);
      if (this.#finishing) return;
      this.#usage = usage;
      this.#events.emit('usage', usage);
      // Under cgroups the kernel may OOM-kill a child rather than the leader; the task is still over.
      if (await this.#opts.isolator.wasOomKilled(handle)) this.#requestKill('oom', 0);
      await boundLogs(this.sandbox, this.#opts.maxLogBytes);
    } catch {
      // The cgroup can vanish under a sample racing the exit; the next sample or the exit settles it.
    } finally {
      this.#sampling = false;
    }
  }

  #signal(sig: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      signalGroup(pid, sig);
    } catch (err) {
      this.#events.emit('warning', `cannot send ${sig} to task ${this.spec.taskId}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #setState(next: TaskState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.#events.emit('state', next, previous);
  }
}

async function step<T>(run: () => Promise<T>, what: string): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new StartFailure(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function checkOptions(opts: TaskRunnerOptions): FilledOptions {
  const filled: FilledOptions = {
    workDir: opts.workDir,
    isolator: opts.isolator,
    killGracePeriodMs: opts.killGracePeriodMs ?? DEFAULTS.killGracePeriodMs,
    usageIntervalMs: opts.usageIntervalMs ?? DEFAULTS.usageIntervalMs,
    path: opts.path ?? process.env.PATH ?? DEFAULTS.path,
    maxLogBytes: opts.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES,
    checkpointDir: opts.checkpointDir,
  };
  if (typeof filled.workDir !== 'string' || filled.workDir === '') {
    throw new InvalidArgumentError('workDir must be a directory path', [{ path: 'workDir', message: 'required' }]);
  }
  if (filled.checkpointDir !== undefined && (typeof filled.checkpointDir !== 'string' || filled.checkpointDir === '')) {
    throw new InvalidArgumentError('checkpointDir must be a directory path', [{ path: 'checkpointDir', message: 'must be a non-empty path' }]);
  }
  if (filled.isolator === undefined || filled.isolator === null) {
    throw new InvalidArgumentError('an isolator is required', [{ path: 'isolator', message: 'required' }]);
  }
  if (!Number.isFinite(filled.killGracePeriodMs) || filled.killGracePeriodMs < 0) {
    throw new InvalidArgumentError(`killGracePeriodMs ${filled.killGracePeriodMs} must be >= 0`, [
      { path: 'killGracePeriodMs', message: 'must be a number of milliseconds >= 0' },
    ]);
  }
  if (!Number.isInteger(filled.maxLogBytes) || filled.maxLogBytes < 1024) {
    throw new InvalidArgumentError(`maxLogBytes ${filled.maxLogBytes} must be a whole number >= 1024`, [
      { path: 'maxLogBytes', message: 'must be a whole number of bytes >= 1024' },
    ]);
  }
  if (!Number.isFinite(filled.usageIntervalMs) || filled.usageIntervalMs < 10) {
    throw new InvalidArgumentError(`usageIntervalMs ${filled.usageIntervalMs} must be >= 10`, [
      { path: 'usageIntervalMs', message: 'must be a number of milliseconds >= 10' },
    ]);
  }
  return filled;
}
