import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import type { Registry } from 'prom-client';
import { Allocator, type Assignment, type TaskRequest, type Unplaced } from '../allocator/allocator.js';
import {
  BorealisError,
  ClosedError,
  DuplicateJobError,
  ErrorCodes,
  InvalidArgumentError,
  JobNotActiveError,
  UnknownAgentError,
  UnknownJobError,
  isBorealisError,
} from '../api/errors.js';
import { EventBus, type EventInput } from '../events/bus.js';
import { NEW_EVENT_LOG } from '../events/log.js';
import type { MasterMessage, TaskStateName } from '../proto/index.js';
import type { AgentConnection } from './agent-connection.js';
import { AgentGateway, DEFAULT_KILL_GRACE_MS } from './agent-gateway.js';
import { DirLock as DataDirLock } from '../util/dir-lock.js';
import { Holdings } from './holdings.js';
import { taskRequestOf } from './task-request.js';
import { Journal, type JournalStats } from './journal/index.js';
import type { JournalEntry, StoreSnapshot } from './journal-entries.js';
import { MAX_INSTANCES, validateJobSpec } from './job-spec.js';
import { MasterMetrics } from './metrics.js';
import { type FilledOptions, type MasterLogger, type MasterOptions, checkOptions } from './options.js';
import { Outbox } from './outbox.js';
import { Placer } from './placer.js';
import { nextForEnded, noteEnding } from './restart-policy.js';
import { type JobRecord, type InstanceSlot, Store, type TaskRecord } from './store.js';
import { type TransitionInfo, isOnAgent, isTerminal } from './task-states.js';
import { TaskWatchdog } from './watchdog.js';
import type { AgentStateName, AgentView, ClusterView, JobSpec, JobState, JobView, TaskView } from './types.js';
import { countHeld, jobView, taskView } from './views.js';

/** The reason of a task lost because its agent never reported on its launch. */
export const STAGING_TIMEOUT_REASON = 'staging_timeout';

function unknownTask(id: string): BorealisError {
  return new BorealisError(ErrorCodes.UNKNOWN_TASK, `task ${JSON.stringify(id)} does not exist`);
}

/**
 * The master: jobs, their tasks and the task lifecycle, agents and their failure detection,
 * durability and the event stream. The one writer of task state.
 *
 * Every state change goes the same way: a journal entry is applied to the in-memory store and
 * appended to the journal in one synchronous step; what the world sees of it — the API call's
 * result, events, acknowledgements and launches sent to agents — goes through the outbox and
 * happens only once the entry is durable, in the order the changes were made. Reads (getJob,
 * listTasks, ...) show the in-memory state, which may be ahead of the durable state and of the
 * event stream by the group commit in flight (a few ms).
 *
 * Desired state is level-triggered: after any change, the instances it touched are "converged"
 * (coalesced per turn of the event loop): an instance that should run and has no live attempt gets
 * a new one (after its backoff), an instance that should not run has its tasks killed, and a task
 * superseded by a newer attempt (drain) is killed once the newer one runs. Recovery after a
 * restart is the same convergence over the replayed state.
 */
export class Master {
  readonly events: EventBus;
  readonly metrics: Registry;
  private readonly m: MasterMetrics;
  private readonly log: MasterLogger;
  private readonly o: FilledOptions;
  private readonly outbox: Outbox;
  private readonly placer: Placer;
  private readonly holdings: Holdings;
  private readonly gateway: AgentGateway;
  private readonly watchdog: TaskWatchdog;
  /** Job -> instances to converge ('all': every instance, e.g. after a scale or a kill). */
  private dirty = new Map<string, Set<number> | 'all'>();
  private convergeImmediate: NodeJS.Immediate | null = null;
  private snapshotSeq: number;
  private compaction: Promise<void> | null = null;
  private failure: BorealisError | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    o: FilledOptions,
    private readonly journal: Journal,
    events: EventBus,
    private readonly allocator: Allocator,
    private readonly store: Store,
    logger: MasterLogger,
    private readonly lock: DataDirLock,
  ) {
    this.o = o;
    this.log = logger;
    this.events = events;
    this.m = new MasterMetrics({
      tasksByState: () => {
        const out: Partial<Record<TaskStateName, number>> = {};
        for (const j of this.store.jobs.values()) countHeld(j, this.store, out);
        return out;
      },
      agentsByState: () => {
        const out: Record<AgentStateName, number> = { up: 0, draining: 0, lost: 0 };
        for (const a of this.gateway.agents.values()) out[a.state]++;
        return out;
      },
      jobsByState: () => {
        const out: Record<JobState, number> = { running: 0, finished: 0, failed: 0, killed: 0 };
        for (const j of this.store.jobs.values()) out[j.state]++;
        return out;
      },
    });
    this.metrics = this.m.registry;
    this.outbox = new Outbox(
      (err) => this.onJournalFailure(err),
      (err) => this.log.error({ err }, 'bug: a master side effect threw'),
    );
    this.holdings = new Holdings(allocator);
    this.placer = new Placer(
      allocator,
      {
        request: (id) => this.placementRequest(id),
        placed: (a, queuedAt) => this.onPlaced(a, queuedAt),
        unplaced: (u) => this.onUnplaced(u),
        bug: (err) => this.log.error({ err }, 'bug: placement result handling threw'),
      },
      { retryMinMs: o.placementRetryMinMs, retryMaxMs: o.placementRetryMaxMs },
    );
    this.snapshotSeq = journal.snapshot?.seq ?? 0;
    this.gateway = new AgentGateway(
      {
        store,
        allocator,
        holdings: this.holdings,
        log: logger,
        transition: (t, to, info) => this.transition(t, to, info),
        emit: (e) => this.emit(e),
        afterDurable: (fn) => this.outbox.effect(fn),
        wakePlacement: (kind) => this.placer.wake(kind),
      },
      { heartbeatTimeoutMs: o.heartbeatTimeoutMs, heartbeatIntervalMs: o.heartbeatIntervalMs, reconcileGraceMs: o.reconcileGraceMs },
    );
    this.watchdog = new TaskWatchdog(
      {
        task: (id) => this.store.tasks.get(id),
        connected: (agentId) => this.gateway.connected(agentId),
        stagingTimedOut: (t) => this.onStagingTimeout(t),
        resendKill: (t) => this.sendKill(t),
        bug: (err) => this.log.error({ err }, 'bug: the task watchdog threw'),
      },
      { stagingTimeoutMs: o.stagingTimeoutMs, killRetryMs: o.killRetryMs, killRetryMaxMs: o.killRetryMaxMs },
    );
  }

  /**
   * Opens the master on `dataDir`: recovers the journal (snapshot, then the entries after it), so
   * every job is back with every task in its last state. Tasks that were on agents are kept
   * provisionally until their agent re-registers (then reconciled) or `reconcileGraceMs` passes
   * (then lost and replaced).
   */
  static async open(opts: MasterOptions): Promise<Master> {
    const o = checkOptions(opts);
    const logger = opts.logger ?? pino({ name: 'borealis-master', level: process.env.BOREALIS_LOG_LEVEL ?? 'warn' });
    await mkdir(o.dataDir, { recursive: true });
    const lock = await DataDirLock.acquire(o.dataDir);
    let journal: Journal | null = null;
    let events: EventBus | null = null;
    let allocator: Allocator | null = null;
    try {
      journal = await Journal.open(join(o.dataDir, 'journal'), { fsync: o.fsync });
      const jr = journal.recovered;
      if (jr.truncatedBytes > 0 || jr.skippedSnapshots.length > 0) {
        // A torn tail was cut (its bytes kept aside in tornCopy) or a damaged snapshot passed over: say so, once.
        const cut = jr.truncatedBytes > 0 ? `${jr.truncatedBytes} bytes of a torn tail cut from ${jr.file} at ${jr.offset} (kept in ${jr.tornCopy})` : '';
        const skipped = jr.skippedSnapshots.length > 0 ? `${jr.skippedSnapshots.length} damaged snapshot(s) passed over` : '';
        logger.warn({ recovery: jr }, `journal recovery: ${[cut, skipped].filter(Boolean).join('; ')}`);
      }
      // Events continue after the last logged seq, in the same epoch, so stream readers resume across this restart.
      events = await EventBus.open(join(o.dataDir, 'events'), {
        ...o.eventLog,
        ...(o.eventCapacity === undefined ? {} : { capacity: o.eventCapacity }),
        onLogError: (err) => logger.error({ err }, 'event log'),
      });
      const recovery = events.log?.recovery;
      if (recovery && (recovery.damage !== null || recovery.truncatedBytes > 0 || (recovery.newEpoch !== null && recovery.newEpoch !== NEW_EVENT_LOG))) {
        // Every stream reader resyncs after a new epoch: say why, once, where an operator looks.
        logger.warn({ recovery }, recovery.newEpoch === null ? 'event log: torn tail cut' : `event log: new epoch (${recovery.newEpoch})`);
      }
      allocator = await Allocator.create({ ...o.allocator, nodes: [] });
      const store = new Store();
      const snap = journal.snapshotJson<StoreSnapshot>();
      if (snap) store.load(snap.value);
      let skipped = 0;
      for await (const r of journal.replayJson<JournalEntry>()) if (!store.apply(r.value)) skipped++;
      if (skipped > 0) logger.warn({ skipped }, 'journal entries skipped during recovery (inconsistent with the state before them)');
      const master = new Master(o, journal, events, allocator, store, logger, lock);
      master.recover();
      return master;
    } catch (err) {
      await allocator?.close().catch(() => undefined);
      await events?.close().catch(() => undefined);
      await journal?.close().catch(() => undefined);
      await lock.release().catch(() => undefined);
      throw err;
    }
  }

  private recover(): void {
    const pending: string[] = [];
    for (const t of this.store.tasks.values()) {
      if (t.state === 'pending') pending.push(t.id);
      // The clocks start over with this master: it cannot know how long the last one had waited.
      if (t.state === 'staging') this.watchdog.staged(t.id);
      if (t.killRequested && isOnAgent(t.state)) this.watchdog.killSent(t.id);
    }
    const expected: string[] = [];
    for (const [agentId, tasks] of this.store.byAgent) if (tasks.size > 0) expected.push(agentId);
    this.gateway.expect(expected);
    for (const name of this.store.jobs.keys()) this.markDirty(name, 'all');
    this.placer.enqueue(pending);
    this.maybeCompact();
  }

  // ---- jobs -----------------------------------------------------------------------------------

  /** Validates and creates a job; resolves once it is durable, with its instances pending placement. */
  async submitJob(spec: JobSpec): Promise<JobView> {
    this.assertUsable();
    const { spec: s, resources } = validateJobSpec(spec);
    const old = this.store.jobs.get(s.name);
    // A name is free again once its job ended and its last task is gone (Aurora allows re-creating a killed job).
    if (old && (old.state === 'running' || hasActive(old))) throw new DuplicateJobError(s.name);
    const at = Date.now();
    this.write({ t: 'job', at, spec: s });
    const data: Record<string, unknown> = { type: s.type, instances: s.instances, cpus: resources.cpus / 1000, resources: s.resources };
    if (s.http) data.http = s.http;
    this.emit({ type: 'job_submitted', at, job: s.name, data });
    this.markDirty(s.name, 'all');
    this.convergeNow();
    await this.durable();
    return jobView(this.job(s.name), this.store);
  }

  getJob(name: string): JobView {
    return jobView(this.job(name), this.store);
  }

  listJobs(): JobView[] {
    return [...this.store.jobs.values()].sort((a, b) => cmp(a.name, b.name)).map((j) => jobView(j, this.store));
  }

  /** Sets the instance count: new instances start, the highest-numbered ones beyond it are killed. */
  async scaleJob(name: string, instances: number): Promise<JobView> {
    this.assertUsable();
    const job = this.job(name);
    if (typeof instances !== 'number' || !Number.isInteger(instances) || instances < 0 || instances > MAX_INSTANCES) {
      throw new InvalidArgumentError(`instances must be a whole number in 0..${MAX_INSTANCES}`, [
        { path: 'instances', message: `must be a whole number in 0..${MAX_INSTANCES}` },
      ]);
    }
    if (job.state !== 'running') throw new JobNotActiveError(name, job.state);
    if (instances !== job.instances) {
      const at = Date.now();
      const from = job.instances;
      this.write({ t: 'scale', at, job: name, instances });
      this.emit({ type: 'job_scaled', at, job: name, data: { from, to: instances } });
      this.markDirty(name, 'all');
      this.convergeNow();
    }
    await this.durable();
    return jobView(job, this.store);
  }

  /** Kills every task of the job; the job ends as killed. Idempotent. */
  async killJob(name: string): Promise<JobView> {
    this.assertUsable();
    const job = this.job(name);
    if (job.state === 'running') {
      this.setJobState(job, 'killed');
      this.convergeNow();
    }
    await this.durable();
    return jobView(job, this.store);
  }

  // ---- tasks ----------------------------------------------------------------------------------

  /** Kills one task. A service instance is then replaced by a new attempt; a batch instance stays killed. */
  async killTask(id: string): Promise<TaskView> {
    this.assertUsable();
    const t = this.store.tasks.get(id);
    if (!t) throw unknownTask(id);
    if (!isTerminal(t.state)) {
      this.killTasks([id], 'killed by request');
      this.convergeNow();
    }
    await this.durable();
    return taskView(t);
  }

  /** Tasks (every attempt still kept), by job, instance and attempt. */
  listTasks(job?: string): TaskView[] {
    return this.pageTasks(job).tasks;
  }

  /**
   * Tasks in listing order (job, instance, attempt), only those in `states` when given, `limit` of them from
   * `offset`; `total` counts the matches before paging. Views are built for the page only.
   */
  pageTasks(job?: string, page: { states?: ReadonlySet<TaskStateName>; offset?: number; limit?: number } = {}): { tasks: TaskView[]; total: number } {
    let tasks: TaskRecord[];
    if (job !== undefined) {
      const j = this.job(job);
      tasks = [];
      for (const slot of j.slots.values()) for (const id of slot.retained) {
        const t = this.store.tasks.get(id);
        if (t) tasks.push(t);
      }
    } else {
      tasks = [...this.store.tasks.values()];
    }
    const states = page.states;
    if (states !== undefined) tasks = tasks.filter((t) => states.has(t.state));
    tasks.sort((a, b) => cmp(a.job, b.job) || a.instance - b.instance || a.attempt - b.attempt);
    const offset = page.offset ?? 0;
    const end = page.limit === undefined ? tasks.length : offset + page.limit;
    return { tasks: tasks.slice(offset, end).map(taskView), total: tasks.length };
  }

  getTask(id: string): TaskView {
    const t = this.store.tasks.get(id);
    if (!t) throw unknownTask(id);
    return taskView(t);
  }

  // ---- agents and the cluster -----------------------------------------------------------------

  listAgents(): AgentView[] {
    return [...this.gateway.agents.values()].sort((a, b) => cmp(a.id, b.id)).map((a) => this.gateway.view(a));
  }

  /**
   * Drains an agent (Mesos maintenance): it takes no new placements, and each service instance on it
   * is moved — a replacement starts elsewhere and the old task is killed once the replacement runs,
   * so capacity never dips. Batch tasks are left to finish. Draining a draining agent changes nothing.
   *
   * A lost agent is drained as Nomad drains a down node: the drain is recorded (journaled) and its state
   * stays `lost`, since state says whether it is reachable and the drain says whether it may take work, and
   * an operator draining a dead machine means "when it comes back, put nothing on it" (it then re-registers
   * draining). Its tasks were lost and replaced with it, so there is nothing to move. Refusing would leave no
   * way to keep a failed machine from taking work the moment it returns.
   */
  async drainAgent(id: string): Promise<AgentView> {
    this.assertUsable();
    const a = this.gateway.agents.get(id);
    if (!a) throw new UnknownAgentError(id);
    if (!a.draining) {
      const at = Date.now();
      this.write({ t: 'drain', at, agent: id });
      a.draining = true;
      if (a.state === 'up') {
        a.state = 'draining';
        this.allocator.drainNode(id);
      }
      // `state` tells a reader of the stream whether the agent is now draining or still lost.
      this.emit({ type: 'agent_draining', at, agentId: id, data: { state: a.state } });
      if (a.state === 'draining') this.moveServices(id);
    }
    await this.durable();
    return this.gateway.view(a);
  }

  /**
   * Lifts a drain (Nomad's `node drain -disable`, Mesos' machine back "up"): the agent takes placements
   * again, and pending tasks that fit there are retried at once. Services moved away stay where they went:
   * an undrain makes room, it moves nothing back. Journaled, so a restarted master has the agent re-register
   * up, not draining. A lost agent loses its drain mark but stays lost (it comes back up).
   * An agent that is not draining is left as it is and the call succeeds, as Nomad's -disable on a node
   * with no drain does: the caller asked for "not draining", and that holds.
   */
  async undrainAgent(id: string): Promise<AgentView> {
    this.assertUsable();
    const a = this.gateway.agents.get(id);
    if (!a) throw new UnknownAgentError(id);
    if (a.draining) {
      const at = Date.now();
      this.write({ t: 'undrain', at, agent: id });
      a.draining = false;
      if (a.state === 'draining') {
        a.state = 'up';
        this.allocator.activateNode(id);
        // Topology, not capacity: a task parked as fitting nowhere may fit on this agent now.
        this.placer.wake('topology');
      }
      this.emit({ type: 'agent_undrained', at, agentId: id, data: { state: a.state } });
    }
    await this.durable();
    return this.gateway.view(a);
  }

  /** A replacement for each current service instance on a draining agent; the old task goes once it runs. */
  private moveServices(agentId: string): void {
    const moves = new Map<string, [number, number][]>();
    for (const t of this.store.tasksOnAgent(agentId)) {
      const job = this.store.jobs.get(t.job);
      const slot = job?.slots.get(t.instance);
      if (!job || !slot || job.spec.type !== 'service' || job.state !== 'running') continue;
      if (slot.current !== t.id || t.instance >= job.instances || t.killRequested) continue;
      let list = moves.get(job.name);
      if (!list) moves.set(job.name, (list = []));
      list.push([t.instance, slot.nextAttempt]);
    }
    for (const [name, list] of moves) this.createTasks(this.job(name), list);
  }

  cluster(): ClusterView {
    const view: ClusterView = {
      agents: { total: this.gateway.agents.size, up: 0, draining: 0, lost: 0 },
      total: { cpus: 0, mem: 0, disk: 0, gpus: 0 },
      used: { cpus: 0, mem: 0, disk: 0, gpus: 0 },
      free: { cpus: 0, mem: 0, disk: 0, gpus: 0 },
      tasks: {},
      jobs: this.store.jobs.size,
    };
    // Summed in table units (millicores are integers), converted once: no float drift over many agents.
    let totalMilli = 0;
    let usedMilli = 0;
    for (const a of this.gateway.agents.values()) {
      view.agents[a.state]++;
      if (a.state === 'lost') continue;
      const v = this.gateway.view(a);
      totalMilli += a.capacity.cpus;
      usedMilli += Math.round(v.used.cpus * 1000);
      for (const k of ['mem', 'disk', 'gpus'] as const) {
        view.total[k] += v.resources[k];
        view.used[k] += v.used[k];
      }
    }
    view.total.cpus = totalMilli / 1000;
    view.used.cpus = usedMilli / 1000;
    view.free.cpus = Math.max(0, totalMilli - usedMilli) / 1000;
    for (const k of ['mem', 'disk', 'gpus'] as const) view.free[k] = Math.max(0, view.total[k] - view.used[k]);
    for (const j of this.store.jobs.values()) countHeld(j, this.store, view.tasks);
    return view;
  }

  /** The journal's counters (appends, group-commit batches, fsyncs), for benchmarks and /metrics. */
  journalStats(): JournalStats {
    return this.journal.stats;
  }

  // ---- agent connections ----------------------------------------------------------------------

  /** Takes over an agent connection: the agent registers over it, then heartbeats and reports status. */
  attachAgent(conn: AgentConnection): void {
    this.gateway.attach(conn);
  }

  // ---- placement ------------------------------------------------------------------------------

  private placementRequest(id: string): TaskRequest | null {
    const t = this.store.tasks.get(id);
    if (!t || t.state !== 'pending') return null;
    const job = this.store.jobs.get(t.job);
    if (!job || job.state !== 'running') return null;
    return taskRequestOf(id, job);
  }

  private onPlaced(assignments: Assignment[], queuedAt: (id: string) => number): void {
    if (this.closing) return;
    const list: [string, string, string, number[]][] = [];
    const now = performance.now();
    const retry: string[] = [];
    for (const as of assignments) {
      const t = this.store.tasks.get(as.taskId);
      const a = this.gateway.agents.get(as.nodeId);
      if (!t || t.state !== 'pending' || !a || a.state !== 'up') {
        // Killed while in flight, or its agent was lost or drained meanwhile: give the room back.
        this.holdings.release(as.taskId);
        if (t?.state === 'pending') retry.push(t.id);
        continue;
      }
      list.push([t.id, a.id, a.host, as.ports]);
      this.m.placements.inc();
      this.m.placementLatency.observe((now - queuedAt(t.id)) / 1000);
    }
    if (retry.length > 0) this.placer.enqueue(retry);
    if (list.length === 0) return;
    const at = Date.now();
    this.write({ t: 'assign', at, list });
    for (const [id, agentId, host, ports] of list) {
      const t = this.store.tasks.get(id)!;
      this.watchdog.staged(id);
      this.m.transitions.inc({ state: 'staging' });
      this.emit({ type: 'task_placed', at, job: t.job, taskId: id, agentId, state: 'staging', data: { from: 'pending', host, ports } });
      this.outbox.effect(() => {
        // Launch only what is still this placement: the agent may have re-registered without it meanwhile.
        if (t.state === 'staging' && t.agentId === agentId) this.gateway.sendNow(agentId, { launch: { task: this.taskInfo(t) } });
      });
    }
  }

  private onUnplaced(u: Unplaced): void {
    const t = this.store.tasks.get(u.taskId);
    this.m.unplaced.inc({ code: u.code });
    if (!t) return;
    t.message = u.status === 'unplaceable_final' ? `cannot be placed: ${u.reason}` : `waiting for resources: ${u.reason}`;
    t.reason = u.code;
  }

  private taskInfo(t: TaskRecord): NonNullable<MasterMessage['launch']>['task'] {
    const job = this.job(t.job);
    const s = job.spec;
    const r = job.resources;
    const info: NonNullable<MasterMessage['launch']>['task'] = {
      taskId: t.id,
      job: job.name,
      instance: t.instance,
      command: typeof s.command === 'string' ? { shell: s.command } : { argv: { args: [...s.command] } },
      env: { ...(s.env ?? {}) },
      resources: { cpusMilli: r.cpus, memMib: r.mem, diskMib: r.disk, gpus: r.gpus },
      ports: [...t.ports],
      killGraceMs: s.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
    };
    const h = s.healthCheck;
    if (h) {
      info.healthCheck = { path: h.path };
      if (h.portIndex !== undefined) info.healthCheck.portIndex = h.portIndex;
      if (h.intervalMs !== undefined) info.healthCheck.intervalMs = h.intervalMs;
      if (h.timeoutMs !== undefined) info.healthCheck.timeoutMs = h.timeoutMs;
      if (h.consecutiveFailures !== undefined) info.healthCheck.consecutiveFailures = h.consecutiveFailures;
      if (h.gracePeriodMs !== undefined) info.healthCheck.gracePeriodMs = h.gracePeriodMs;
    }
    return info;
  }

  // ---- the lifecycle --------------------------------------------------------------------------

  private transition(t: TaskRecord, to: TaskStateName, info: TransitionInfo = {}): void {
    const from = t.state;
    const at = Date.now();
    const e: JournalEntry = { t: 'state', at, id: t.id, state: to };
    if (info.reason !== undefined) e.reason = info.reason;
    if (info.message !== undefined) e.message = info.message;
    if (info.exitCode !== undefined) e.exitCode = info.exitCode;
    this.write(e);
    this.m.transitions.inc({ state: to });
    const data: Record<string, unknown> = { from, ...info };
    this.emit({ type: 'task_state', at, job: t.job, taskId: t.id, ...(t.agentId === undefined ? {} : { agentId: t.agentId }), state: to, data });
    if (isTerminal(to)) {
      if (from === 'pending') this.placer.withdraw(t.id);
      if (isOnAgent(from)) {
        this.holdings.release(t.id);
        this.placer.wake('capacity');
      }
      const job = this.store.jobs.get(t.job);
      const slot = job?.slots.get(t.instance);
      if (job && slot && slot.current === t.id) {
        slot.notBefore = noteEnding(job, slot, t, performance.now(), this.o.restartBackoffMs, this.o.maxRestartBackoffMs);
      }
    }
    if (to === 'running' || isTerminal(to)) this.markDirty(t.job, t.instance);
  }

  private markDirty(job: string, instance: number | 'all'): void {
    const cur = this.dirty.get(job);
    if (instance === 'all') this.dirty.set(job, 'all');
    else if (cur === undefined) this.dirty.set(job, new Set([instance]));
    else if (cur !== 'all') cur.add(instance);
    if (!this.convergeImmediate && !this.closing) {
      this.convergeImmediate = setImmediate(() => {
        this.convergeImmediate = null;
        try {
          this.converge();
        } catch (err) {
          // A bug; the next change converges again. Crashing would take every job's master down.
          this.log.error({ err }, 'bug: convergence threw');
        }
      });
    }
  }

  private convergeNow(): void {
    if (this.convergeImmediate) {
      clearImmediate(this.convergeImmediate);
      this.convergeImmediate = null;
    }
    this.converge();
  }

  private converge(): void {
    if (this.closing) return;
    // Converging may dirty more (a batch job failing kills its instances): loop until quiet.
    while (this.dirty.size > 0) {
      const dirty = this.dirty;
      this.dirty = new Map();
      for (const [name, which] of dirty) {
        const job = this.store.jobs.get(name);
        if (!job) continue;
        const create: [number, number][] = [];
        const kill: string[] = [];
        let exhausted = false;
        for (const i of which === 'all' ? instancesOf(job) : which) {
          if (this.convergeInstance(job, i, create, kill) === 'exhausted') exhausted = true;
        }
        if (kill.length > 0) this.killTasks(kill, job.state === 'running' ? 'instance no longer wanted' : `job ${job.state}`);
        if (create.length > 0) this.createTasks(job, create);
        if (job.spec.type === 'batch' && job.state === 'running') {
          if (exhausted) this.setJobState(job, 'failed');
          else if (batchDone(job, this.store)) this.setJobState(job, 'finished');
        }
      }
    }
  }

  private convergeInstance(job: JobRecord, i: number, create: [number, number][], kill: string[]): 'exhausted' | void {
    const slot = job.slots.get(i);
    const wanted = job.state === 'running' && i < job.instances;
    if (!wanted) {
      if (slot) {
        clearSlotTimer(slot);
        for (const id of slot.active) kill.push(id);
      }
      return;
    }
    if (!slot || slot.current === null) {
      create.push([i, slot?.nextAttempt ?? 0]);
      return;
    }
    const cur = this.store.tasks.get(slot.current);
    if (!cur) return;
    if (isTerminal(cur.state)) {
      const next = nextForEnded(job, slot, cur);
      if (next !== 'replace') return next === 'exhausted' ? 'exhausted' : undefined;
      const wait = slot.notBefore - performance.now();
      if (wait > 0) {
        if (!slot.timer) {
          slot.timer = setTimeout(() => {
            slot.timer = null;
            this.markDirty(job.name, i);
          }, wait);
          slot.timer.unref();
        }
        return;
      }
      clearSlotTimer(slot);
      create.push([i, slot.nextAttempt]);
      return;
    }
    // A superseded attempt (drain) goes once the current one runs: capacity never dips.
    if (slot.active.size > 1 && cur.state === 'running') for (const id of slot.active) if (id !== cur.id) kill.push(id);
  }

  private createTasks(job: JobRecord, list: [number, number][]): void {
    const at = Date.now();
    this.write({ t: 'tasks', at, job: job.name, list });
    const ids: string[] = [];
    for (const [instance, attempt] of list) {
      const id = `${job.name}.${instance}.${attempt}`;
      ids.push(id);
      this.m.transitions.inc({ state: 'pending' });
      this.emit({ type: 'task_state', at, job: job.name, taskId: id, state: 'pending', data: { instance, attempt } });
    }
    this.placer.enqueue(ids);
  }

  /** Kills tasks: pending ones at once, those on agents through a KillTask (they end when the agent says so). */
  private killTasks(ids: readonly string[], reason: string): void {
    const pending: TaskRecord[] = [];
    const onAgent: TaskRecord[] = [];
    for (const id of ids) {
      const t = this.store.tasks.get(id);
      if (!t || isTerminal(t.state) || t.killRequested) continue;
      (t.state === 'pending' ? pending : onAgent).push(t);
    }
    if (pending.length + onAgent.length === 0) return;
    this.write({ t: 'kill', at: Date.now(), ids: [...pending, ...onAgent].map((t) => t.id) });
    for (const t of pending) this.transition(t, 'killed', { reason: 'killed', message: 'killed before it was placed' });
    for (const t of onAgent) {
      this.sendKill(t);
      this.watchdog.killSent(t.id);
      this.emit({ type: 'task_killing', job: t.job, taskId: t.id, ...(t.agentId === undefined ? {} : { agentId: t.agentId }), data: { reason } });
    }
  }

  /** A KillTask for a task on an agent, once everything before it is durable. */
  private sendKill(t: TaskRecord): void {
    if (t.agentId === undefined) return;
    const grace = this.store.jobs.get(t.job)?.spec.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.gateway.sendLater(t.agentId, { kill: { taskId: t.id, graceMs: grace } });
  }

  /**
   * The agent never reported on a launch (Aurora's transient-task timeout): the task is lost and,
   * as any lost task, replaced; the agent is told to kill it in case it does run it after all.
   */
  private onStagingTimeout(t: TaskRecord): void {
    if (this.closing || t.state !== 'staging') return;
    const agentId = t.agentId;
    this.transition(t, 'lost', {
      reason: STAGING_TIMEOUT_REASON,
      message: `agent ${agentId ?? '?'} reported nothing of the launch within ${this.o.stagingTimeoutMs} ms`,
    });
    this.sendKill(t);
  }

  private setJobState(job: JobRecord, state: JobState): void {
    const at = Date.now();
    this.write({ t: 'job_state', at, job: job.name, state });
    if (state === 'killed') this.emit({ type: 'job_killed', at, job: job.name });
    else if (state !== 'running') this.emit({ type: 'job_finished', at, job: job.name, data: { state } });
    this.log.info({ job: job.name, state }, 'job state');
    if (state !== 'running') this.markDirty(job.name, 'all');
  }

  // ---- durability, events, sends --------------------------------------------------------------

  private write(e: JournalEntry): void {
    this.store.apply(e);
    this.outbox.append(this.journal.appendJson(e));
    this.maybeCompact();
  }

  /** Publishes once durable, stamped with the time of the change (not of the publish). */
  private emit(e: EventInput): void {
    const stamped = e.at === undefined ? { ...e, at: Date.now() } : e;
    this.outbox.effect(() => this.events.publish(stamped));
  }

  /** Resolves once every change made so far is durable; rejects if the journal failed. */
  private async durable(): Promise<void> {
    await this.outbox.barrier();
    if (this.failure) throw this.failure;
  }

  private onJournalFailure(err: unknown): void {
    if (this.failure) return;
    this.failure = isBorealisError(err) ? err : new BorealisError(ErrorCodes.INTERNAL, `journal append failed: ${String(err)}`);
    // The journal poisons itself after a failed write: this master can no longer make anything durable.
    this.log.error({ err }, 'journal failed; the master refuses further changes');
    this.events.publish({ type: 'error', data: { code: this.failure.code, message: this.failure.message } });
  }

  private maybeCompact(): void {
    if (this.compaction || this.closing) return;
    const upto = this.journal.lastSeq;
    if (upto - this.snapshotSeq < this.o.compactEvery) return;
    // The store reflects exactly the entries up to lastSeq (apply and append happen together), and
    // compactJson serialises it synchronously: the snapshot is the state as of `upto`.
    this.compaction = this.journal
      .compactJson(this.store.toSnapshot(), upto)
      .then(
        () => {
          this.snapshotSeq = upto;
        },
        (err: unknown) => this.log.error({ err }, 'journal compaction failed; will retry'),
      )
      .finally(() => {
        this.compaction = null;
      });
  }

  private assertUsable(): void {
    if (this.closing) throw new ClosedError('master');
    if (this.failure) throw this.failure;
  }

  private job(name: string): JobRecord {
    const j = typeof name === 'string' ? this.store.jobs.get(name) : undefined;
    if (!j) throw new UnknownJobError(String(name));
    return j;
  }

  /**
   * Stops the master: agents are disconnected (they keep their tasks and reconnect to the next
   * master), pending journal writes are flushed, the allocator's threads are stopped.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.convergeImmediate) clearImmediate(this.convergeImmediate);
      this.convergeImmediate = null;
      for (const j of this.store.jobs.values()) for (const s of j.slots.values()) clearSlotTimer(s);
      this.placer.close();
      this.watchdog.close();
      this.gateway.close();
      try {
        await this.outbox.barrier();
        await this.events.close();
        await this.compaction;
        await this.journal.close();
        await this.allocator.close();
      } finally {
        // Even when a close above failed: the directory is free for the next master either way.
        await this.lock.release();
      }
    })();
    return this.closing;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hasActive(job: JobRecord): boolean {
  for (const s of job.slots.values()) if (s.active.size > 0) return true;
  return false;
}

function clearSlotTimer(slot: InstanceSlot): void {
  if (slot.timer) clearTimeout(slot.timer);
  slot.timer = null;
}

/** Every instance that should run plus any beyond the count that still has a slot (to kill or keep killed). */
function* instancesOf(job: JobRecord): Iterable<number> {
  for (let i = 0; i < job.instances; i++) yield i;
  for (const i of job.slots.keys()) if (i >= job.instances) yield i;
}

/** A batch job is done when every instance's current attempt ended and needs nothing more. */
function batchDone(job: JobRecord, store: Store): boolean {
  for (let i = 0; i < job.instances; i++) {
    const slot = job.slots.get(i);
    const cur = slot?.current == null ? undefined : store.tasks.get(slot.current);
    if (!slot || !cur || !isTerminal(cur.state) || nextForEnded(job, slot, cur) !== 'done') return false;
  }
  return true;
}
