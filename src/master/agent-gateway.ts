import type { Allocator } from '../allocator/allocator.js';
import { ErrorCodes, isBorealisError } from '../api/errors.js';
import type { EventInput } from '../events/bus.js';
import {
  type MasterMessage,
  type RegisterMsg,
  type TaskStatusMsg,
  decodeAgentMessage,
  encodeMasterMessage,
  taskStateFromWire,
} from '../proto/index.js';
import { type AgentConnection, AgentCloseCode } from './agent-connection.js';
import { type AgentRecord, type AgentSession, agentView, hostOf } from './agents.js';
import type { Holdings } from './holdings.js';
import { taskRequestOf } from './task-request.js';
import type { MasterLogger } from './options.js';
import { planReconcile } from './reconcile.js';
import type { Store, TaskRecord } from './store.js';
import { type TransitionInfo, canTransition, isStaleProgress, isTerminal } from './task-states.js';
import type { AgentView } from './types.js';

/** Mesos' default kill grace (SIGTERM to SIGKILL) when a job names none; the agent's task runner uses the same. */
export const DEFAULT_KILL_GRACE_MS = 5_000;
/** The failure detector looks this many times per timeout, so an agent is declared lost at most 25% late. */
const SWEEPS_PER_TIMEOUT = 4;
/** ...but never more often than this: a tiny test timeout must not become a busy loop. */
const MIN_SWEEP_MS = 10;
/** Agent ids are map keys, table node ids and log fields: bound them. */
const MAX_AGENT_ID_LENGTH = 256;

/** What the gateway needs of the master: the state, and the one way to change task state. */
export interface GatewayHost {
  readonly store: Store;
  readonly allocator: Allocator;
  readonly holdings: Holdings;
  readonly log: MasterLogger;
  transition(t: TaskRecord, to: TaskRecord['state'], info?: TransitionInfo): void;
  emit(e: EventInput): void;
  /** Runs `fn` once every change made so far is durable (the master's outbox). */
  afterDurable(fn: () => void): void;
  /** Capacity or topology changed: parked tasks may fit now. */
  wakePlacement(kind: 'capacity' | 'topology'): void;
}

export interface GatewayOptions {
  heartbeatTimeoutMs: number;
  heartbeatIntervalMs: number;
  reconcileGraceMs: number;
}

/**
 * The master's side of the agent protocol: connections, registration and reconciliation,
 * heartbeats and the failure detector, status updates and their acknowledgements, and sends.
 * It decides nothing about jobs; task state changes go through `host.transition`.
 *
 * Nothing an agent sends can crash the master: a frame that does not decode, or a message out of
 * order, gets a ProtocolError and a close; a semantically odd update (unknown task, illegal
 * transition) is acknowledged, refused with an `error` event, and the task killed if it should
 * not run.
 */
export class AgentGateway {
  readonly agents = new Map<string, AgentRecord>();
  private readonly sessions = new Set<AgentSession>();
  /** Agents that had tasks when the master restarted and have not re-registered yet. */
  private readonly provisional = new Set<string>();
  /** Agents that said they are shutting down (Leaving): marked down for placement until they register again. */
  private readonly leaving = new Set<string>();
  private sweepTimer: NodeJS.Timeout | null;
  private graceTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly host: GatewayHost,
    private readonly o: GatewayOptions,
  ) {
    const sweepMs = Math.max(MIN_SWEEP_MS, Math.min(o.heartbeatIntervalMs, o.heartbeatTimeoutMs / SWEEPS_PER_TIMEOUT));
    this.sweepTimer = setInterval(() => this.guard('failure detector', () => this.sweep()), sweepMs);
    this.sweepTimer.unref();
  }

  /**
   * After a restart: these agents had tasks. They have `reconcileGraceMs` to re-register (their
   * tasks are then reconciled); after that their tasks are lost and replaced.
   */
  expect(agentIds: Iterable<string>): void {
    for (const id of agentIds) this.provisional.add(id);
    if (this.provisional.size === 0 || this.graceTimer) return;
    this.graceTimer = setTimeout(() => this.guard('reconciliation grace', () => this.expireProvisional()), this.o.reconcileGraceMs);
    this.graceTimer.unref();
  }

  attach(conn: AgentConnection): void {
    if (this.closed) {
      conn.close(AgentCloseCode.GOING_AWAY, 'master is shutting down');
      return;
    }
    const session: AgentSession = { conn, agentId: null, closed: false };
    this.sessions.add(session);
    conn.onMessage((bytes) => {
      try {
        this.onFrame(session, bytes);
      } catch (err) {
        // A bug on our side must not take the master down with one agent's frame.
        this.host.log.error({ err, agent: session.agentId }, 'bug: agent frame handling threw');
        this.protocolError(session, ErrorCodes.INTERNAL, 'internal error handling the message', false);
      }
    });
    conn.onClose(() => this.onClosed(session));
  }

  view(a: AgentRecord): AgentView {
    return agentView(a, this.host.allocator, this.host.store.byAgent.get(a.id)?.size ?? 0);
  }

  /** Whether the agent has a live connection. */
  connected(agentId: string): boolean {
    const s = this.agents.get(agentId)?.session;
    return s != null && !s.closed;
  }

  /** Sends once every change made so far is durable. */
  sendLater(agentId: string, msg: MasterMessage): void {
    this.host.afterDurable(() => this.sendNow(agentId, msg));
  }

  sendNow(agentId: string, msg: MasterMessage): void {
    const s = this.agents.get(agentId)?.session;
    if (!s || s.closed) return; // an agent that is away learns through reconciliation when it returns
    try {
      s.conn.send(encodeMasterMessage(msg));
    } catch (err) {
      this.host.log.error({ err, agent: agentId }, 'send to agent failed');
    }
  }

  /** Disconnects every agent (they keep their tasks and reconnect to the next master) and stops the timers. */
  close(): void {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.sweepTimer = this.graceTimer = null;
    for (const s of [...this.sessions]) this.retire(s, AgentCloseCode.GOING_AWAY, 'master is shutting down');
    this.sessions.clear();
  }

  /** Timer callbacks: a throw there would be an uncaught exception, ending the process. */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.host.log.error({ err }, `bug: ${what} threw`);
    }
  }

  // ---- frames ---------------------------------------------------------------------------------

  private onClosed(session: AgentSession): void {
    session.closed = true;
    this.sessions.delete(session);
    const a = session.agentId === null ? undefined : this.agents.get(session.agentId);
    // The agent stays up until its heartbeat timeout: it may just be reconnecting.
    if (a && a.session === session) {
      a.session = null;
      this.host.log.info({ agent: a.id }, 'agent disconnected');
    }
  }

  /** Closes a session the master is done with; frames still in flight on it are ignored. */
  private retire(session: AgentSession, code: number, reason: string): void {
    const a = session.agentId === null ? undefined : this.agents.get(session.agentId);
    if (a && a.session === session) a.session = null;
    session.closed = true;
    session.agentId = null;
    try {
      session.conn.close(code, reason);
    } catch (err) {
      this.host.log.warn({ err }, 'closing an agent connection failed');
    }
  }

  private onFrame(session: AgentSession, bytes: Uint8Array): void {
    if (this.closed || session.closed) return;
    let msg;
    try {
      msg = decodeAgentMessage(bytes);
    } catch (err) {
      this.protocolError(session, ErrorCodes.PROTOCOL, err instanceof Error ? err.message : 'undecodable frame', true);
      return;
    }
    if (msg.register) {
      this.onRegister(session, msg.register);
      return;
    }
    const a = session.agentId === null ? undefined : this.agents.get(session.agentId);
    if (!a || a.session !== session) {
      this.protocolError(session, ErrorCodes.PROTOCOL, 'register before anything else', true);
      return;
    }
    a.lastSeenAt = performance.now(); // any frame is a sign of life
    if (msg.heartbeat) {
      a.lastHeartbeatAt = Date.now();
    } else if (msg.leaving) {
      this.onLeaving(a, msg.leaving.reason || 'shutting down');
    } else if (msg.status) {
      if (!msg.status.status) this.protocolError(session, ErrorCodes.PROTOCOL, 'status update without a status', false);
      else this.onStatus(a, session, msg.status.status);
    } else {
      this.protocolError(session, ErrorCodes.PROTOCOL, 'empty AgentMessage', true);
    }
  }

  private protocolError(session: AgentSession, code: string, message: string, close: boolean): void {
    this.host.log.warn({ agent: session.agentId, remote: session.conn.remoteAddress, code, message }, 'agent protocol error');
    if (session.closed) return;
    try {
      session.conn.send(encodeMasterMessage({ error: { code, message } }));
    } catch (err) {
      this.host.log.warn({ err }, 'could not report a protocol error');
    }
    if (close) this.retire(session, AgentCloseCode.PROTOCOL_ERROR, message.slice(0, 120));
  }

  // ---- registration and reconciliation --------------------------------------------------------

  private onRegister(session: AgentSession, reg: RegisterMsg): void {
    const { store, allocator } = this.host;
    const id = reg.agentId;
    if (typeof id !== 'string' || id === '' || id.length > MAX_AGENT_ID_LENGTH) {
      this.protocolError(session, ErrorCodes.PROTOCOL, `agent_id must be 1..${MAX_AGENT_ID_LENGTH} characters`, true);
      return;
    }
    if (session.agentId !== null && session.agentId !== id) {
      this.protocolError(session, ErrorCodes.PROTOCOL, 'a connection serves one agent id', true);
      return;
    }
    let a = this.agents.get(id);
    let kind: 'new' | 'reconnected' | 'returned';
    if (!a) {
      const res = reg.resources ?? {};
      const capacity = { cpus: res.cpusMilli ?? 0, mem: res.memMib ?? 0, disk: res.diskMib ?? 0, gpus: res.gpus ?? 0 };
      const ports = (res.ports ?? []).map((p) => ({ begin: p.begin, end: p.end }));
      const attributes = { ...(reg.attributes ?? {}) };
      try {
        allocator.addNode({ id, resources: { cpus: `${capacity.cpus}m`, mem: capacity.mem, disk: capacity.disk, gpus: capacity.gpus }, ports, attributes });
      } catch (err) {
        this.host.log.warn({ err, agent: id }, 'agent registration refused');
        const code = isBorealisError(err) ? err.code : ErrorCodes.INTERNAL;
        this.protocolError(session, code, `registration refused: ${err instanceof Error ? err.message : String(err)}`, false);
        this.retire(session, AgentCloseCode.REFUSED, 'registration refused');
        return;
      }
      const draining = store.drained.has(id);
      if (draining) allocator.drainNode(id);
      a = {
        id,
        hostname: reg.hostname || id,
        host: '',
        peer: '',
        isolation: reg.isolation || 'unknown',
        attributes,
        capacity,
        ports,
        state: draining ? 'draining' : 'up',
        draining,
        session: null,
        lastSeenAt: 0,
        lastHeartbeatAt: 0,
        registeredAt: Date.now(),
      };
      this.agents.set(id, a);
      kind = 'new';
    } else {
      if (a.session && a.session !== session) this.retire(a.session, AgentCloseCode.SUPERSEDED, 'the agent registered over a newer connection');
      kind = a.state === 'lost' ? 'returned' : 'reconnected';
      // A (new run of an) agent that had left takes placements again; it says Leaving again if it still is.
      const hadLeft = this.leaving.delete(id);
      if (kind === 'returned' || hadLeft) {
        if (a.draining) allocator.drainNode(id);
        else allocator.activateNode(id);
      }
      // Resources and attributes stay as first registered: the node's row is not re-shaped under running tasks.
      a.hostname = reg.hostname || a.hostname;
      a.isolation = reg.isolation || a.isolation;
      a.state = a.draining ? 'draining' : 'up';
    }
    a.peer = session.conn.remoteAddress;
    // The agent's own word for where it is reachable; the peer's port is the connection's ephemeral
    // one, meaningless to anyone else, so only its host stands in when nothing was advertised.
    a.host = reg.advertiseIp || hostOf(session.conn.remoteAddress) || a.hostname;
    a.session = session;
    a.lastSeenAt = performance.now();
    a.lastHeartbeatAt = Date.now();
    session.agentId = id;
    this.provisional.delete(id);

    const plan = planReconcile(id, store.tasksOnAgent(id), reg.tasks ?? [], (tid) => store.tasks.get(tid), kind === 'returned');
    for (const { task, reported } of plan.keep) {
      // After a master restart no placement charged it: charge it where it runs, with its ports.
      const job = store.jobs.get(task.job);
      if (job) this.host.holdings.adopt(taskRequestOf(task.id, job), id, task.ports);
      this.applyReported(a, task, reported, false);
    }
    for (const t of plan.missing) {
      this.host.transition(t, 'lost', { reason: 'agent_reregistered', message: `not running on agent ${id} when it re-registered` });
    }
    this.sendLater(id, { registered: { agentId: id, heartbeatIntervalMs: this.o.heartbeatIntervalMs, killTasks: plan.kill } });
    this.host.emit({
      type: kind === 'new' ? 'agent_registered' : 'agent_reregistered',
      agentId: id,
      data: {
        hostname: a.hostname,
        host: a.host,
        cpus: a.capacity.cpus / 1000,
        resources: { cpus: a.capacity.cpus / 1000, mem: a.capacity.mem, disk: a.capacity.disk, gpus: a.capacity.gpus },
        attributes: { ...a.attributes },
        kept: plan.keep.length, lost: plan.missing.length, killed: plan.kill.length, returned: kind === 'returned' },
    });
    this.host.log.info({ agent: id, kind, kept: plan.keep.length, lost: plan.missing.length, killed: plan.kill.length }, 'agent registered');
    this.host.wakePlacement('topology');
  }

  /**
   * The agent is shutting down: nothing new goes there. Its tasks stay as they are; it reports them as they end
   * (LOST, agent_stopped, when it kills them), and the failure detector handles it if it goes silent first. Not a
   * drain: that is an operator's mark and outlives the agent; this ends with the agent's next registration.
   */
  private onLeaving(a: AgentRecord, reason: string): void {
    if (a.state === 'lost' || this.leaving.has(a.id)) return;
    this.leaving.add(a.id);
    this.host.allocator.markNodeDown(a.id);
    this.host.log.info({ agent: a.id, reason }, 'agent leaving: no new placements');
  }

  // ---- status updates -------------------------------------------------------------------------

  private onStatus(a: AgentRecord, session: AgentSession, st: TaskStatusMsg): void {
    if (typeof st.taskId !== 'string' || st.taskId === '') {
      this.protocolError(session, ErrorCodes.PROTOCOL, 'status update without a task_id', false);
      return;
    }
    const t = this.host.store.tasks.get(st.taskId);
    if (!t || t.agentId !== a.id) {
      // Not ours (unknown, pruned, or placed elsewhere since): make sure it does not run there.
      const to = taskStateFromWire(st.state);
      if (to !== undefined && !isTerminal(to)) this.sendLater(a.id, { kill: { taskId: st.taskId, graceMs: DEFAULT_KILL_GRACE_MS } });
    } else {
      this.applyReported(a, t, st, true);
    }
    // Acknowledged in every case (repeats, refusals), or the agent would resend it forever; and only
    // after everything before it is durable, so an ack never overtakes the change it acknowledges.
    if (st.uuid) this.sendLater(a.id, { ack: { taskId: st.taskId, uuid: st.uuid } });
  }

  /** Applies what an agent says of one of the master's tasks on it: a transition, or nothing for a repeat. */
  private applyReported(a: AgentRecord, t: TaskRecord, st: TaskStatusMsg, live: boolean): void {
    const to = taskStateFromWire(st.state);
    if (to === undefined) {
      this.refuse(t, a, `unknown task state ${st.state}`, ErrorCodes.PROTOCOL);
      return;
    }
    if (this.host.store.jobs.get(t.job)?.spec.healthCheck && (to === 'running' || to === t.state)) {
      const healthy = st.healthy === true;
      if (t.healthy !== healthy) {
        t.healthy = healthy;
        // The balancer adds or removes the endpoint on this; it is not a transition (no `state`).
        this.host.emit({ type: 'task_health', job: t.job, taskId: t.id, agentId: a.id, data: { healthy } });
      }
    }
    if (to === t.state) return; // a repeat: idempotent
    // An older progress state after a newer one (STARTING after RUNNING): the agent resending an
    // update it had no ack for when the connection dropped, while its Register already carried the
    // newer state. Already superseded, so a repeat as well.
    if (isStaleProgress(t.state, to)) {
      this.host.log.debug({ task: t.id, agent: a.id, state: t.state, reported: to }, 'stale status update ignored');
      return;
    }
    // The agent's account of a task the master already closed (declared lost, then killed there on
    // its return): expected after any loss, so not an error.
    if (isTerminal(t.state) && isTerminal(to)) return;
    if (!canTransition(t.state, to)) {
      // Stale or out of order (running after lost): refused, never applied. If the master considers
      // the task over but the agent still runs it, it must go.
      if (live) this.refuse(t, a, `illegal transition ${t.state} -> ${to}`, ErrorCodes.INVALID_TRANSITION);
      if (isTerminal(t.state) && !isTerminal(to)) this.sendLater(a.id, { kill: { taskId: t.id, graceMs: DEFAULT_KILL_GRACE_MS } });
      return;
    }
    const info: TransitionInfo = {};
    if (st.reason) info.reason = st.reason;
    if (st.message) info.message = st.message;
    if (st.exitCode !== undefined) info.exitCode = st.exitCode;
    else if (to === 'finished') info.exitCode = 0; // proto3 leaves a zero off the wire
    this.host.transition(t, to, info);
  }

  private refuse(t: TaskRecord, a: AgentRecord, message: string, code: string): void {
    this.host.log.warn({ task: t.id, agent: a.id, code }, message);
    this.host.emit({ type: 'error', taskId: t.id, job: t.job, agentId: a.id, state: t.state, data: { code, message } });
  }

  // ---- failure detection ----------------------------------------------------------------------

  /** Agents silent past the timeout are lost. Any frame counts as a sign of life, not only heartbeats. */
  private sweep(): void {
    if (this.closed) return;
    const now = performance.now();
    for (const a of this.agents.values()) {
      if (a.state !== 'lost' && now - a.lastSeenAt > this.o.heartbeatTimeoutMs) this.declareLost(a, `silent for more than ${this.o.heartbeatTimeoutMs} ms`);
    }
  }

  private declareLost(a: AgentRecord, why: string): void {
    a.state = 'lost';
    this.host.allocator.markNodeDown(a.id);
    if (a.session) this.retire(a.session, AgentCloseCode.DECLARED_LOST, 'declared lost; re-register');
    const tasks = this.host.store.tasksOnAgent(a.id);
    this.host.emit({ type: 'agent_lost', agentId: a.id, data: { reason: why, tasks: tasks.length } });
    this.host.log.warn({ agent: a.id, tasks: tasks.length }, `agent lost: ${why}`);
    for (const t of tasks) this.host.transition(t, 'lost', { reason: 'agent_lost', message: `agent ${a.id} ${why}` });
  }

  private expireProvisional(): void {
    this.graceTimer = null;
    for (const id of this.provisional) {
      const tasks = this.host.store.tasksOnAgent(id);
      this.host.log.warn({ agent: id, tasks: tasks.length }, 'agent did not re-register after the master restarted');
      for (const t of tasks) {
        this.host.transition(t, 'lost', {
          reason: 'agent_lost',
          message: `agent ${id} did not re-register within ${this.o.reconcileGraceMs} ms of a master restart`,
        });
      }
    }
    this.provisional.clear();
  }
}
