/**
 * One launched task on a real agent: its TaskRunner, its health checker, and the status updates they add up to.
 *
 * Every launched task reports, in this order:
 *   STARTING                      as soon as the launch is accepted (before anything is spawned);
 *   RUNNING                       once spawned (no health check), or once the first check passes (healthy=true);
 *   one of FINISHED | FAILED | KILLED | LOST, exactly once, last.
 * RUNNING is skipped when the task ends before it (failed_to_start, exited or killed while starting).
 * LOST (reason agent_stopped) is a task the agent killed because the agent itself is stopping: the task did not
 * fail and nobody asked for it to end, so the master reschedules it as after an agent loss, spending no retry.
 */
import { constants as osConstants } from 'node:os';
import { InvalidArgumentError, isBorealisError } from '../api/errors.js';
import { taskStateToWire } from '../proto/index.js';
import type { HealthCheckMsg, TaskInfoMsg, TaskStateName, TaskStatusMsg } from '../proto/index.js';
import { TaskRunner } from './executor/task-runner.js';
import type { ExitResult, TaskCommand, TaskSpec } from './executor/types.js';
import { HttpHealthChecker } from './health/health-checker.js';
import type { HealthCheckOptions, HealthStatus } from './health/health-checker.js';
import type { ProbeResult } from './health/http-probe.js';
import type { Isolator } from './isolation/types.js';
import type { Timer, TimerQueue } from './timers.js';

/** A status before the agent stamps it with a uuid and a timestamp. */
export type StatusFields = Omit<TaskStatusMsg, 'taskId' | 'state' | 'uuid' | 'timestampMs'> & { state: TaskStateName };

export interface TaskContext {
  workDir: string;
  /** Where running tasks' process identities are checkpointed (see executor/checkpoint.ts); none when absent. */
  checkpointDir?: string;
  isolator: Isolator;
  timers: TimerQueue;
  killGraceMs: number;
  usageIntervalMs: number;
  /** Agent capacity, the limit of a task that asks for no cpus or mem (see limitsOf). */
  capacity: { cpusMilli: number; memMib: number };
  /** Variables every task gets below the job's own (HOST). */
  baseEnv: Readonly<Record<string, string>>;
  report(task: ExecutorTask, fields: StatusFields): void;
  log(line: string): void;
}

/** Where a task is in its life on this agent; the last status reported says the same on the wire. */
export type TaskPhase = 'starting' | 'running' | 'finished' | 'failed' | 'killed' | 'lost';

/** The reason of a task killed because its agent is stopping (reported LOST). */
export const AGENT_STOPPED_REASON = 'agent_stopped';

export class ExecutorTask {
  readonly taskId: string;
  readonly info: TaskInfoMsg;
  /** The latest status reported; undefined until the first (see `latest`). */
  last: TaskStatusMsg | undefined;
  /** When the launch was accepted: the timestamp of the STAGING that stands in before any status. */
  readonly #acceptedAt = Date.now();
  #phase: TaskPhase = 'starting';
  #runner: TaskRunner | undefined;
  #checker: HttpHealthChecker | undefined;
  #deadline: Timer | undefined;
  #everHealthy = false;
  #lastProbe: ProbeResult | undefined;
  /** Who asked first for the task to end: a KillTask (or the agent for the master), or the agent's own stop. */
  #killedBy: 'request' | 'agent_stop' | undefined;
  readonly #ctx: TaskContext;

  constructor(info: TaskInfoMsg, ctx: TaskContext) {
    this.taskId = info.taskId;
    this.info = info;
    this.#ctx = ctx;
  }

  /**
   * What Register.tasks carries for this task: the latest status reported, or STAGING while none has
   * been (Mesos reports a task whose executor has not started the same way). Every task the agent
   * took must be in the Register: one left out is, to the master, a launch that never arrived, so it
   * would be declared lost and its replacement would run beside it.
   */
  get latest(): TaskStatusMsg {
    // No uuid: nobody acknowledges a Register's task list, so this is never a status update of its own.
    return this.last ?? makeStatus(this.taskId, { state: 'staging' }, '', this.#acceptedAt);
  }

  get phase(): TaskPhase {
    return this.#phase;
  }

  get terminal(): boolean {
    return this.#phase === 'finished' || this.#phase === 'failed' || this.#phase === 'killed' || this.#phase === 'lost';
  }

  get pid(): number | undefined {
    return this.#runner?.pid;
  }

  get sandbox(): string | undefined {
    return this.#runner?.sandbox;
  }

  get runner(): TaskRunner | undefined {
    return this.#runner;
  }

  get healthy(): boolean | undefined {
    return this.#checker === undefined ? undefined : this.#checker.status === 'healthy';
  }

  /** Reports STARTING and launches. Never throws: a task that cannot start ends FAILED / failed_to_start. */
  start(): void {
    this.#ctx.report(this, { state: 'starting' });
    let spec: TaskSpec;
    let health: HealthCheckOptions | undefined;
    try {
      spec = specOf(this.info, this.#ctx);
      health = healthOf(this.info);
      this.#runner = new TaskRunner(spec, {
        workDir: this.#ctx.workDir,
        isolator: this.#ctx.isolator,
        killGracePeriodMs: this.info.killGraceMs ? this.info.killGraceMs : this.#ctx.killGraceMs,
        usageIntervalMs: this.#ctx.usageIntervalMs,
        ...(this.#ctx.checkpointDir === undefined ? {} : { checkpointDir: this.#ctx.checkpointDir }),
      });
    } catch (err) {
      this.#end({ state: 'failed', reason: 'failed_to_start', message: `invalid task: ${describe(err)}` });
      return;
    }
    const runner = this.#runner;
    runner.on('warning', (line) => this.#ctx.log(`task ${this.taskId}: ${line}`));
    runner.on('state', (state) => {
      if (state !== 'running') return;
      if (health === undefined) this.#running(undefined);
      else this.#startHealthCheck(health);
    });
    void runner.exited.then((result) => this.#onExit(result));
    runner.start().catch((err: unknown) => {
      // start() only throws for caller errors (a second start); report rather than leave the task hanging.
      this.#ctx.log(`task ${this.taskId}: cannot start: ${describe(err)}`);
    });
  }

  /** SIGTERM, grace, SIGKILL to the whole group; ends KILLED. A no-op once the task has ended. */
  kill(graceMs?: number): Promise<void> {
    return this.#kill('request', graceMs);
  }

  /**
   * As kill(), for the agent's own shutdown: ends LOST (agent_stopped) rather than KILLED, unless a kill was
   * already asked for (then it stays KILLED) or the task ends by itself first.
   */
  stopWithAgent(): Promise<void> {
    return this.#kill('agent_stop', undefined);
  }

  #kill(by: 'request' | 'agent_stop', graceMs: number | undefined): Promise<void> {
    const runner = this.#runner;
    if (runner === undefined || this.terminal) return Promise.resolve();
    this.#killedBy ??= by;
    this.#stopHealthCheck();
    return runner.kill('killed', graceMs === undefined ? {} : { gracePeriodMs: graceMs }).then(() => undefined);
  }

  /** Stops supervision only (the agent is going away and leaves its tasks running). */
  detach(): void {
    this.#stopHealthCheck();
  }

  #startHealthCheck(opts: HealthCheckOptions): void {
    const checker = new HttpHealthChecker(opts);
    this.#checker = checker;
    checker.on('change', (status, _previous, last) => this.#onHealth(status, last));
    checker.start();
    // A task gets the grace period plus N intervals to answer once; failures before that are a boot, not a fault.
    const o = checker.options;
    this.#deadline = this.#ctx.timers.after(o.gracePeriodMs + o.consecutiveFailures * o.intervalMs, () => {
      this.#deadline = undefined;
      if (!this.#everHealthy && checker.status === 'unhealthy') this.#killUnhealthy();
    });
  }

  #onHealth(status: HealthStatus, last: ProbeResult): void {
    this.#lastProbe = last;
    if (this.terminal) return;
    if (status === 'healthy') {
      if (!this.#everHealthy) {
        this.#everHealthy = true;
        this.#deadline?.cancel();
        this.#deadline = undefined;
        this.#running(true);
      }
    } else if (status === 'unhealthy') {
      // Before the first success this only counts once the boot deadline has passed (see #startHealthCheck).
      if (this.#everHealthy || this.#deadline === undefined) this.#killUnhealthy();
    }
  }

  #killUnhealthy(): void {
    const runner = this.#runner;
    if (runner === undefined || this.terminal) return;
    this.#ctx.log(`task ${this.taskId}: unhealthy (${this.#lastProbe?.error ?? 'no answer'}); killing it`);
    this.#stopHealthCheck();
    void runner.kill('unhealthy');
  }

  #running(healthy: boolean | undefined): void {
    if (this.#phase !== 'starting') return;
    this.#phase = 'running';
    this.#ctx.report(this, healthy === undefined ? { state: 'running' } : { state: 'running', healthy });
  }

  #onExit(result: ExitResult): void {
    this.#stopHealthCheck();
    const fields = statusOfExit(result, this.#lastProbe);
    if (this.#killedBy === 'agent_stop' && fields.state === 'killed') {
      fields.state = 'lost';
      fields.reason = AGENT_STOPPED_REASON;
      fields.message = `the agent stopped (${fields.message ?? 'task killed'})`;
    }
    this.#end(fields);
  }

  #end(fields: StatusFields): void {
    if (this.terminal) return;
    this.#phase = fields.state as TaskPhase;
    this.#ctx.report(this, fields);
  }

  #stopHealthCheck(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
    const checker = this.#checker;
    if (checker !== undefined) void checker.stop();
  }
}

/** How the runner's ExitResult reads on the wire. */
export function statusOfExit(result: ExitResult, lastProbe?: ProbeResult): StatusFields {
  const out: StatusFields = { state: 'failed', reason: result.reason };
  if (result.message !== undefined) out.message = result.message;
  if (result.exitCode !== null) out.exitCode = result.exitCode;
  else if (result.signal !== null) {
    // The shell's convention (128 + signal number), so one integer says how it ended.
    const num = osConstants.signals[result.signal];
    if (num !== undefined) out.exitCode = 128 + num;
    out.message ??= `terminated by ${result.signal}`;
  }
  switch (result.reason) {
    case 'exited':
      if (result.exitCode === 0) out.state = 'finished';
      else if (result.exitCode !== null) out.message ??= `exited with code ${result.exitCode}`;
      break;
    case 'killed':
      out.state = 'killed';
      break;
    case 'unhealthy':
      out.healthy = false;
      out.message = `health check failed: ${lastProbe?.error ?? 'no answer'}`;
      break;
    case 'oom':
    case 'failed_to_start':
      break;
  }
  return out;
}

function commandOf(info: TaskInfoMsg): TaskCommand {
  const c = info.command;
  if (c?.argv !== undefined && Array.isArray(c.argv.args) && c.argv.args.length > 0) return { argv: c.argv.args };
  if (typeof c?.shell === 'string' && c.shell !== '') return { shell: c.shell };
  throw new InvalidArgumentError('task has no command', [{ path: 'command', message: 'needs shell or argv' }]);
}

/**
 * Limits from the task's resources. proto3 cannot tell "0" from "unset", and a task that asked for no cpus (or no
 * mem) was placed without accounting for any: it is bounded by the whole agent rather than refused, so a job that
 * only asks for ports still runs.
 */
function specOf(info: TaskInfoMsg, ctx: TaskContext): TaskSpec {
  const r = info.resources ?? {};
  return {
    taskId: info.taskId,
    job: info.job,
    command: commandOf(info),
    env: { ...ctx.baseEnv, ...(info.env ?? {}) },
    ports: info.ports ?? [],
    limits: {
      memMiB: r.memMib && r.memMib > 0 ? r.memMib : Math.max(1, ctx.capacity.memMib),
      cpusMilli: r.cpusMilli && r.cpusMilli > 0 ? r.cpusMilli : Math.max(1, ctx.capacity.cpusMilli),
    },
  };
}

/**
 * Health check options from the wire. Zero is proto3's "unset": interval, timeout and failures fall back to the
 * checker's defaults (zero is meaningless for them); a zero grace period means no grace.
 */
function healthOf(info: TaskInfoMsg): HealthCheckOptions | undefined {
  const hc: HealthCheckMsg | undefined = info.healthCheck;
  if (hc === undefined) return undefined;
  const index = hc.portIndex ?? 0;
  const port = info.ports?.[index];
  if (port === undefined) {
    throw new InvalidArgumentError(`health check probes port index ${index}, but the task has ${info.ports?.length ?? 0} port(s)`, [
      { path: 'healthCheck.portIndex', message: 'no such port' },
    ]);
  }
  const opts: HealthCheckOptions = { port, gracePeriodMs: hc.gracePeriodMs ?? 0 };
  if (hc.path) opts.path = hc.path;
  if (hc.intervalMs) opts.intervalMs = hc.intervalMs;
  if (hc.timeoutMs) opts.timeoutMs = hc.timeoutMs;
  if (hc.consecutiveFailures) opts.consecutiveFailures = hc.consecutiveFailures;
  return opts;
}

function describe(err: unknown): string {
  if (isBorealisError(err) && err.problems.length > 0) {
    return `${err.message} (${err.problems.map((p) => `${p.path}: ${p.message}`).join('; ')})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The answer to a KillTask for an id the agent does not run (a launch that never arrived, a task long gone), so
 * that the master does not wait for a KILLED that would never come.
 */
export const UNKNOWN_TASK_KILLED: Readonly<StatusFields> = { state: 'killed', reason: 'unknown_task', message: 'the agent does not run this task' };

/** Stamps fields into a wire status. */
export function makeStatus(taskId: string, fields: StatusFields, uuid: string, now: number): TaskStatusMsg {
  const { state, ...rest } = fields;
  return { taskId, state: taskStateToWire(state), uuid, timestampMs: now, ...rest };
}
