/**
 * The Borealis agent: registers this machine's resources with the master, runs the tasks the master launches as
 * isolated child processes, reports their status reliably, and survives losing the master.
 *
 * `Agent` is a thin shell (checked options, one defaults object) over three parts:
 * - MasterConnection (connection.ts): the socket, Register/Registered, heartbeats, reconnect with backoff, and the
 *   StatusUpdateQueue (ordered per task, resent until acknowledged);
 * - ExecutorTask (task.ts): one per launched task, turning its TaskRunner and health checks into status updates;
 * - the isolator picked by detectIsolator, shared by every task.
 * The agent only reports: which state a task is in, as far as the cluster is concerned, is the master's decision.
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, isBorealisError } from '../api/errors.js';
import type { FieldProblem } from '../api/errors.js';
import { formatCpus, formatMebibytes, formatPortRanges } from '../resources/index.js';
import { taskStateFromWire } from '../proto/index.js';
import type { RegisterMsg, TaskInfoMsg, TaskStateName, TaskStatusMsg, TaskUsageMsg } from '../proto/index.js';
import { loadOrCreateAgentId } from './agent-id.js';
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { MasterConnection, registerMessage, masterUrl } from './connection.js';
import type { ConnectionState } from './connection.js';
import { CHECKPOINT_DIR } from './executor/checkpoint.js';
import { detectIsolator } from './isolation/detect.js';
import { checkAgentId } from './isolation/limits.js';
import type { Isolator, IsolatorName } from './isolation/types.js';
import { parseOffer } from './offer.js';
import type { AgentOffer } from './offer.js';
import { reapOrphans } from './orphan-reaper.js';
import { SandboxGc } from './sandbox-gc.js';
import type { SandboxGcOptions } from './sandbox-gc.js';
import type { StatusRetryOptions } from './status-updates.js';
import { AGENT_STOPPED_REASON, ExecutorTask, UNKNOWN_TASK_KILLED, makeStatus } from './task.js';
import type { StatusFields, TaskContext } from './task.js';
import { sharedTimers } from './timers.js';
import { DirLock } from '../util/dir-lock.js';

export interface AgentOptions {
  /** `host:port` of the master. */
  master: string;
  /** Default: derived from the hostname and workDir, persisted in `<workDir>/agent-id`. */
  agentId?: string;
  /** `cpus=4,mem=8Gi,disk=20Gi,gpus=0` (may also carry `ports=...`). */
  resources: string;
  /** `31000-32000` (several ranges comma-separated); default Mesos' 31000-32000. */
  ports?: string;
  /** `zone=a,rack=r1`. */
  attributes?: string;
  /** Where this agent's tasks are reachable; default 127.0.0.1. */
  advertiseIp?: string;
  /** Reported to the master; default os.hostname(). */
  hostname?: string;
  /** Holds `agent-id`, `sandboxes/<taskId>/` and `checkpoints/` (created if missing). */
  workDir: string;
  /** `auto`: the best of cgroup v2, cgroup v1, rss-poll that works here; `rss-poll`: never cgroups. */
  isolation?: 'auto' | 'rss-poll';
  /** SIGTERM-to-SIGKILL grace when neither the KillTask nor the task says. */
  killGraceMs?: number;
  reconnect?: BackoffOptions;
  /** Resending unacknowledged status updates while connected. */
  statusRetry?: StatusRetryOptions;
  /** How often each task's usage is sampled (reported with heartbeats). */
  usageIntervalMs?: number;
  /**
   * Ended tasks' sandboxes are kept for inspection, then deleted when a task ends: a sandbox goes once it is
   * neither among the newest `keepNewest` (default 50) nor younger than `maxAgeMs` (default 1 h).
   */
  sandboxGc?: SandboxGcOptions;
  /** One line per call, without a trailing newline; default: stderr with a timestamp. */
  logger?: (line: string) => void;
}

/** What `tasks()` tells about one task. */
export interface AgentTaskView {
  taskId: string;
  job: string;
  state: TaskStateName;
  pid?: number;
  sandbox?: string;
  healthy?: boolean;
  /** Status updates the master has not acknowledged yet. */
  unacknowledged: number;
}

const DEFAULTS = {
  advertiseIp: '127.0.0.1',
  isolation: 'auto',
  /** Long enough for a server to drain in-flight requests after SIGTERM, as the TaskRunner's own default. */
  killGraceMs: 5_000,
  usageIntervalMs: 1_000,
} as const;

/** How long stop() waits for the master to acknowledge the final updates (KILLED) before closing anyway. */
const STOP_FLUSH_MS = 2_000;

export class Agent {
  readonly agentId: string;
  readonly hostname: string;
  readonly advertiseIp: string;
  readonly workDir: string;
  /** Parent of every task's sandbox: `<workDir>/sandboxes`. */
  readonly sandboxRoot: string;
  /** Running tasks' process identities, for the next run of the agent if this one dies: `<workDir>/checkpoints`. */
  readonly checkpointDir: string;
  readonly offer: AgentOffer;
  readonly isolation: { name: IsolatorName; summary: string };
  readonly #isolator: Isolator;
  readonly #conn: MasterConnection;
  readonly #tasks = new Map<string, ExecutorTask>();
  readonly #ctx: TaskContext;
  readonly #log: (line: string) => void;
  readonly #gc: SandboxGc;
  readonly #lock: DirLock;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  /**
   * Checks the options, locks the work dir, kills the tasks an earlier run of this agent left running (see
   * orphan-reaper.ts), picks the isolation, and starts connecting; resolves before registration (see
   * whenRegistered). Refused with DirLockedError (BRL_ERR_WORK_DIR_LOCKED) while another live agent holds the work dir.
   */
  static async start(opts: AgentOptions): Promise<Agent> {
    const o = checkOptions(opts);
    const offer = parseOffer(o.resources, o.ports, o.attributes);
    const workDir = path.resolve(o.workDir);
    const sandboxRoot = path.join(workDir, 'sandboxes');
    await mkdir(sandboxRoot, { recursive: true });
    // First, before anything in the work dir is read or touched: a second agent on it would register the same agent
    // id (the master would flip between the two connections) and would take the first one's tasks for orphans.
    const lock = await DirLock.acquire(workDir, 'agent');
    try {
      return await Agent.#startLocked(o, offer, workDir, sandboxRoot, lock);
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  static async #startLocked(o: FilledOptions, offer: AgentOffer, workDir: string, sandboxRoot: string, lock: DirLock): Promise<Agent> {
    const hostname = o.hostname ?? os.hostname();
    const agentId = o.agentId !== undefined ? checkAgentId(o.agentId) : await loadOrCreateAgentId(workDir, hostname);
    // Before registering, so the Register lists none of them and the master counts them lost; and before isolation
    // detection, which creates a cgroup root that a failure here would leak.
    const checkpointDir = path.join(workDir, CHECKPOINT_DIR);
    await reapOrphans({ dir: checkpointDir, log: o.logger });
    const detection = await detectIsolator({ agentId, ...(o.isolation === 'rss-poll' ? { allow: ['rss-poll'] as const } : {}) });
    const agent = new Agent(o, { agentId, hostname, workDir, sandboxRoot, checkpointDir, offer, isolator: detection.isolator, summary: detection.summary, lock });
    const r = offer.resources;
    agent.#log(`agent ${agentId} on ${hostname}, advertising ${agent.advertiseIp}`);
    agent.#log(`isolation: ${detection.summary}`);
    agent.#log(`isolation detail: ${detection.reason}`);
    agent.#log(`sandboxes: ${sandboxRoot}`);
    agent.#log(
      `offering cpus=${formatCpus(r.cpusMilli)} mem=${formatMebibytes(r.memMib)} disk=${formatMebibytes(r.diskMib)} gpus=${r.gpus} ` +
        `ports=${formatPortRanges(r.ports)}${Object.keys(offer.attributes).length > 0 ? ` attributes ${formatAttributes(offer.attributes)}` : ''}`,
    );
    agent.#log(`connecting to the master at ${agent.#conn.url}`);
    agent.#conn.start();
    return agent;
  }

  private constructor(
    o: FilledOptions,
    parts: {
      agentId: string;
      hostname: string;
      workDir: string;
      sandboxRoot: string;
      checkpointDir: string;
      offer: AgentOffer;
      isolator: Isolator;
      summary: string;
      lock: DirLock;
    },
  ) {
    this.#lock = parts.lock;
    this.agentId = parts.agentId;
    this.hostname = parts.hostname;
    this.advertiseIp = o.advertiseIp;
    this.workDir = parts.workDir;
    this.sandboxRoot = parts.sandboxRoot;
    this.checkpointDir = parts.checkpointDir;
    this.offer = parts.offer;
    this.#isolator = parts.isolator;
    this.isolation = { name: parts.isolator.name, summary: parts.summary };
    this.#log = o.logger;
    this.#gc = new SandboxGc(parts.sandboxRoot, o.sandboxGc ?? {}, o.logger);
    this.#ctx = {
      workDir: parts.sandboxRoot,
      checkpointDir: parts.checkpointDir,
      isolator: parts.isolator,
      timers: sharedTimers,
      killGraceMs: o.killGraceMs,
      usageIntervalMs: o.usageIntervalMs,
      capacity: { cpusMilli: parts.offer.resources.cpusMilli, memMib: parts.offer.resources.memMib },
      // Marathon's convention: a task learns the address it is reachable at without asking anyone.
      baseEnv: { HOST: o.advertiseIp },
      report: (task, fields) => this.#report(task, fields),
      log: this.#log,
    };
    this.#conn = new MasterConnection({
      master: o.master,
      log: this.#log,
      ...(o.reconnect === undefined ? {} : { reconnect: o.reconnect }),
      ...(o.statusRetry === undefined ? {} : { statusRetry: o.statusRetry }),
      handlers: {
        register: () => this.#registerMessage(),
        registered: (msg) => this.#onRegistered(msg),
        launch: (info) => this.#launch(info),
        kill: (taskId, graceMs) => this.#kill(taskId, graceMs),
        usage: () => this.#usage(),
        drained: (taskId) => {
          // Mesos forgets a task once its terminal update is acknowledged; so do we (its sandbox stays on disk).
          if (this.#tasks.get(taskId)?.terminal) this.#tasks.delete(taskId);
        },
      },
    });
  }

  get state(): ConnectionState {
    return this.#conn.state;
  }

  /** Successful registrations (1 after the first, +1 per re-registration). */
  get registrations(): number {
    return this.#conn.registrations;
  }

  /** Resolves once registered with the master (at once if it is). */
  whenRegistered(): Promise<void> {
    return this.#conn.whenRegistered();
  }

  /** Every task the agent knows: running, or ended with updates not yet acknowledged. */
  tasks(): AgentTaskView[] {
    return [...this.#tasks.values()].map((t) => this.#view(t));
  }

  task(taskId: string): AgentTaskView | undefined {
    const t = this.#tasks.get(taskId);
    return t === undefined ? undefined : this.#view(t);
  }

  /**
   * Stops the agent. First the master is told the agent is leaving, so that it places nothing more here (Nomad
   * drains a node that shuts down). With `killTasks`, every task is killed (its grace period applies) and reported
   * LOST (agent_stopped), so the master reschedules it as after an agent loss, spending no batch retry (Mesos
   * reports TASK_LOST/GONE for tasks of an agent that shuts down); the master gets a bounded chance to acknowledge
   * those updates. Without, tasks keep running unsupervised (their processes are detached and outlive the agent)
   * until the next start of an agent on the same work dir kills them, as it kills those of an agent that died.
   * Then the connection closes, the isolator removes its cgroup root, and the work dir is unlocked.
   */
  stop(opts: { killTasks: boolean }): Promise<void> {
    this.#stopped ??= this.#stop(opts.killTasks);
    return this.#stopped;
  }

  async #stop(killTasks: boolean): Promise<void> {
    this.#stopping = true;
    this.#conn.leave(killTasks ? 'agent stopping; its tasks are killed' : 'agent stopping; its tasks are left running');
    const tasks = [...this.#tasks.values()];
    if (killTasks) {
      this.#log(`stopping: killing ${tasks.filter((t) => !t.terminal).length} task(s)`);
      await Promise.all(tasks.map((t) => t.stopWithAgent()));
      await this.#conn.flush(STOP_FLUSH_MS);
    } else {
      this.#log(`stopping: leaving ${tasks.filter((t) => !t.terminal).length} task(s) running`);
      for (const t of tasks) t.detach();
    }
    try {
      await this.#conn.close();
      await this.#gc.idle();
      try {
        await this.#isolator.close();
      } catch (err) {
        this.#log(`isolation cleanup failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    } finally {
      // Last: until here this agent's tasks and cgroups were still its own business.
      await this.#lock.release();
    }
    this.#log('stopped');
  }

  #registerMessage(): RegisterMsg {
    const tasks: TaskStatusMsg[] = [];
    for (const t of this.#tasks.values()) tasks.push(t.latest);
    return registerMessage({
      agentId: this.agentId,
      hostname: this.hostname,
      advertiseIp: this.advertiseIp,
      offer: this.offer,
      isolation: this.isolation.name,
      tasks,
    });
  }

  #onRegistered(msg: { agentId: string; heartbeatIntervalMs: number; killTasks: string[] }): void {
    const again = this.#conn.registrations > 1;
    this.#log(
      `${again ? 're-registered' : 'registered'} with the master as ${this.agentId} ` +
        `(heartbeat every ${msg.heartbeatIntervalMs} ms, ${this.#tasks.size} task(s) reported)`,
    );
    if (msg.agentId !== '' && msg.agentId !== this.agentId) {
      this.#log(`the master calls this agent ${msg.agentId}; it keeps its own id ${this.agentId}`);
    }
    for (const taskId of msg.killTasks) {
      const t = this.#tasks.get(taskId);
      if (t === undefined) {
        this.#log(`the master asked to kill task ${taskId}, which this agent does not run`);
      } else if (!t.terminal) {
        this.#log(`killing task ${taskId}: the master does not know it`);
        void t.kill();
      }
    }
  }

  #launch(info: TaskInfoMsg): void {
    const existing = this.#tasks.get(info.taskId);
    if (existing !== undefined) {
      this.#log(`ignoring a duplicate launch of task ${info.taskId} (it is ${existing.phase})`);
      return;
    }
    if (this.#stopping) {
      // Placed before the master heard of the leave: not the task's failure, so lost (rescheduled, no retry spent).
      this.#sendBare(info.taskId, { state: 'lost', reason: AGENT_STOPPED_REASON, message: 'the agent is stopping' });
      return;
    }
    const task = new ExecutorTask(info, this.#ctx);
    this.#tasks.set(info.taskId, task);
    this.#log(`launching task ${info.taskId} of job ${info.job || '(none)'}`);
    task.start();
  }

  #kill(taskId: string, graceMs: number | undefined): void {
    const t = this.#tasks.get(taskId);
    if (t === undefined) {
      this.#sendBare(taskId, UNKNOWN_TASK_KILLED);
      return;
    }
    if (t.terminal) return; // its terminal update is already on its way
    this.#log(`killing task ${taskId}${graceMs === undefined ? '' : ` (grace ${graceMs} ms)`}`);
    void t.kill(graceMs);
  }

  #usage(): TaskUsageMsg[] {
    const out: TaskUsageMsg[] = [];
    for (const t of this.#tasks.values()) {
      const u = t.runner?.usage;
      if (u === undefined || t.terminal) continue;
      out.push(u.cpuSeconds === undefined ? { taskId: t.taskId, rssBytes: u.rssBytes } : { taskId: t.taskId, rssBytes: u.rssBytes, cpuSeconds: u.cpuSeconds });
    }
    return out;
  }

  #report(task: ExecutorTask, fields: StatusFields): void {
    const status = makeStatus(task.taskId, fields, randomUUID(), Date.now());
    task.last = status;
    this.#logStatus(status);
    this.#conn.sendStatus(status);
    // A task's end is when sandboxes pile up, so that is when they are collected (its own, the newest, stays).
    if (task.terminal) void this.#gc.collect(() => this.#activeTaskIds());
  }

  /** Tasks whose sandboxes are in use: every task not ended. */
  #activeTaskIds(): Set<string> {
    const ids = new Set<string>();
    for (const t of this.#tasks.values()) if (!t.terminal) ids.add(t.taskId);
    return ids;
  }

  /** A status for a task the agent does not track (unknown kill, launch while stopping). */
  #sendBare(taskId: string, fields: StatusFields): void {
    const status = makeStatus(taskId, fields, randomUUID(), Date.now());
    this.#logStatus(status);
    this.#conn.sendStatus(status);
  }

  #logStatus(s: TaskStatusMsg): void {
    const detail = [s.reason, s.exitCode !== undefined && s.exitCode !== 0 ? `exit ${s.exitCode}` : undefined, s.message]
      .filter((x) => x !== undefined && x !== '')
      .join(', ');
    this.#log(`task ${s.taskId}: ${taskStateFromWire(s.state) ?? s.state}${detail === '' ? '' : ` (${detail})`}`);
  }

  #view(t: ExecutorTask): AgentTaskView {
    const view: AgentTaskView = {
      taskId: t.taskId,
      job: t.info.job,
      state: t.phase,
      unacknowledged: this.#conn.updates.pendingOf(t.taskId).length,
    };
    if (t.pid !== undefined) view.pid = t.pid;
    if (t.sandbox !== undefined) view.sandbox = t.sandbox;
    if (t.healthy !== undefined) view.healthy = t.healthy;
    return view;
  }
}

type FilledOptions = Omit<AgentOptions, 'advertiseIp' | 'isolation' | 'killGraceMs' | 'usageIntervalMs' | 'logger'> &
  Required<Pick<AgentOptions, 'advertiseIp' | 'isolation' | 'killGraceMs' | 'usageIntervalMs' | 'logger'>>;

function checkOptions(opts: AgentOptions): FilledOptions {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('agent options must be an object');
  const o: FilledOptions = {
    ...opts,
    advertiseIp: opts.advertiseIp ?? DEFAULTS.advertiseIp,
    isolation: opts.isolation ?? DEFAULTS.isolation,
    killGraceMs: opts.killGraceMs ?? DEFAULTS.killGraceMs,
    usageIntervalMs: opts.usageIntervalMs ?? DEFAULTS.usageIntervalMs,
    logger: opts.logger ?? defaultLogger,
  };
  const problems: FieldProblem[] = [];
  try {
    masterUrl(o.master);
  } catch {
    problems.push({ path: 'master', message: 'must be host:port' });
  }
  if (typeof o.workDir !== 'string' || o.workDir === '') problems.push({ path: 'workDir', message: 'required' });
  if (typeof o.advertiseIp !== 'string' || !/^[^\s/]+$/.test(o.advertiseIp)) {
    problems.push({ path: 'advertiseIp', message: 'must be an address or host name' });
  }
  if (o.isolation !== 'auto' && o.isolation !== 'rss-poll') problems.push({ path: 'isolation', message: 'must be auto or rss-poll' });
  if (!Number.isFinite(o.killGraceMs) || o.killGraceMs < 0) problems.push({ path: 'killGraceMs', message: 'must be >= 0' });
  if (!Number.isFinite(o.usageIntervalMs) || o.usageIntervalMs < 10) problems.push({ path: 'usageIntervalMs', message: 'must be >= 10' });
  if (typeof o.logger !== 'function') problems.push({ path: 'logger', message: 'must be a function' });
  // Checked here, before isolation detection creates anything that a late failure would leak.
  try {
    new Backoff(o.reconnect);
  } catch (err) {
    problems.push(...(isBorealisError(err) ? err.problems : [{ path: 'reconnect', message: String(err) }]));
  }
  if (o.sandboxGc !== undefined) {
    if (o.sandboxGc === null || typeof o.sandboxGc !== 'object') problems.push({ path: 'sandboxGc', message: 'must be an object' });
    else {
      const { keepNewest, maxAgeMs } = o.sandboxGc;
      if (keepNewest !== undefined && (!Number.isInteger(keepNewest) || keepNewest < 0)) {
        problems.push({ path: 'sandboxGc.keepNewest', message: 'must be a whole number >= 0' });
      }
      if (maxAgeMs !== undefined && (!Number.isFinite(maxAgeMs) || maxAgeMs < 0)) problems.push({ path: 'sandboxGc.maxAgeMs', message: 'must be >= 0' });
    }
  }
  for (const key of ['initialMs', 'maxMs'] as const) {
    const v = o.statusRetry?.[key];
    if (v !== undefined && (!Number.isFinite(v) || v < 1)) problems.push({ path: `statusRetry.${key}`, message: 'must be >= 1' });
  }
  if (problems.length > 0) {
    throw new InvalidArgumentError(`invalid agent options: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  return o;
}

function defaultLogger(line: string): void {
  process.stderr.write(`${new Date().toISOString()} agent: ${line}\n`);
}

function formatAttributes(attrs: Record<string, string>): string {
  return Object.entries(attrs)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
