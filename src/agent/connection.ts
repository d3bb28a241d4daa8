/**
 * The agent's side of the wire protocol, shared by the real agent and the simulated one: one WebSocket to
 * `ws://<master>/v1/agents/ws` (subprotocol borealis.agent.v1, binary protobuf frames), and around it
 *
 *   connect -> send Register -> wait Registered -> [heartbeat every interval, status updates, launch/kill/ack]
 *      ^                                                              |
 *      +------------- backoff (exponential, jittered) <-- socket lost / master silent / no Registered
 *
 * What runs on the agent is not this module's business: it asks its owner for the Register payload at each
 * (re)connection and for usage at each heartbeat, and hands launch, kill and Registered.kill_tasks to the owner.
 * Status updates go through the StatusUpdateQueue (ordered per task, resent until acknowledged).
 *
 * Robustness: nothing the master sends can throw out of here. A frame that does not decode, a text frame, an
 * empty message or a handler that throws is logged and ignored; the connection stays up.
 */
import WebSocket from 'ws';
import { ClosedError, InvalidArgumentError } from '../api/errors.js';
import { AGENT_SUBPROTOCOL, decodeMasterMessage, encodeAgentMessage } from '../proto/index.js';
import type { AgentMessage, MasterMessage, RegisterMsg, TaskInfoMsg, TaskStatusMsg, TaskUsageMsg } from '../proto/index.js';
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { StatusUpdateQueue } from './status-updates.js';
import type { StatusRetryOptions } from './status-updates.js';
import { sharedTimers } from './timers.js';
import type { Timer, TimerQueue } from './timers.js';
import type { AgentOffer } from './offer.js';

export const AGENT_WS_PATH = '/v1/agents/ws';

/** Sent in Register.version, for the master's logs and for refusing agents a future master no longer speaks to. */
export const AGENT_VERSION = 'borealis-agent/0.1.0';

export type ConnectionState = 'connecting' | 'registering' | 'registered' | 'waiting' | 'closed';

export interface ConnectionHandlers {
  /** The Register to send now: called at every (re)connection, so `tasks` is what the agent runs at that moment. */
  register(): RegisterMsg;
  /** Registered arrived; `killTasks` are tasks the master wants gone. Updates queued meanwhile are sent after. */
  registered(msg: { agentId: string; heartbeatIntervalMs: number; killTasks: string[] }): void;
  launch(task: TaskInfoMsg): void;
  /** `graceMs` is undefined when the master did not set one. */
  kill(taskId: string, graceMs: number | undefined): void;
  /** Usage for the next heartbeat. */
  usage(): TaskUsageMsg[];
  /** Every update of `taskId` so far has been acknowledged. */
  drained(taskId: string): void;
  /** The connection was lost (tasks keep running; a reconnect is scheduled unless closing). */
  disconnected?(): void;
}

export interface MasterConnectionOptions {
  /** `host:port` of the master. */
  master: string;
  handlers: ConnectionHandlers;
  log: (line: string) => void;
  reconnect?: BackoffOptions;
  statusRetry?: StatusRetryOptions;
  timers?: TimerQueue;
  /** How long to wait for Registered after the socket opened before trying again. */
  registerTimeoutMs?: number;
  /** Log each failed connection attempt (a real agent does; hundreds of simulated ones would drown the log). */
  logAttempts?: boolean;
}

/** Used when Registered carries no interval: five heartbeats fit in the master's default 10 s failure timeout. */
const DEFAULT_HEARTBEAT_MS = 2_000;
/** A master that accepted the socket but never answers is as good as down. */
const DEFAULT_REGISTER_TIMEOUT_MS = 10_000;
/**
 * The master sends nothing unprompted in steady state, so each heartbeat also pings; a socket that yields neither
 * pong nor message for this many intervals (and at least MIN_SILENCE_MS, to ride out a master's GC pause or a long
 * fsync) is dead even if TCP has not noticed (a master host that vanished without a FIN).
 */
const SILENT_INTERVALS = 3;
const MIN_SILENCE_MS = 10_000;
/** Bound on the close handshake when stopping, after which the socket is simply destroyed. */
const CLOSE_TIMEOUT_MS = 1_000;

export class MasterConnection {
  readonly url: string;
  readonly updates: StatusUpdateQueue;
  readonly #handlers: ConnectionHandlers;
  readonly #log: (line: string) => void;
  readonly #backoff: Backoff;
  readonly #timers: TimerQueue;
  readonly #registerTimeoutMs: number;
  readonly #logAttempts: boolean;
  #ws: WebSocket | undefined;
  #state: ConnectionState = 'waiting';
  #timer: Timer | undefined;
  #heartbeatMs = DEFAULT_HEARTBEAT_MS;
  #heartbeatSeq = 0;
  #lastHeardAt = 0;
  #lastError: string | undefined;
  #registrations = 0;
  #waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /** Set by leave(): said again after any re-registration, since the master forgets it when the agent registers. */
  #leaving: string | undefined;

  constructor(opts: MasterConnectionOptions) {
    this.url = masterUrl(opts.master);
    this.#handlers = opts.handlers;
    this.#log = opts.log;
    this.#backoff = new Backoff(opts.reconnect);
    this.#timers = opts.timers ?? sharedTimers;
    this.#registerTimeoutMs = opts.registerTimeoutMs ?? DEFAULT_REGISTER_TIMEOUT_MS;
    this.#logAttempts = opts.logAttempts ?? true;
    this.updates = new StatusUpdateQueue(
      (status) => this.#write({ status: { status } }),
      (taskId) => this.#safely('drained', () => this.#handlers.drained(taskId)),
      opts.statusRetry,
    );
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Successful registrations so far (1 after the first, +1 per re-registration). */
  get registrations(): number {
    return this.#registrations;
  }

  get heartbeatIntervalMs(): number {
    return this.#heartbeatMs;
  }

  start(): void {
    if (this.#state === 'closed') throw new ClosedError('master connection');
    if (this.#ws !== undefined || this.#timer !== undefined) return;
    this.#connect();
  }

  /** Resolves at the next registration, or at once when registered. Rejects if the connection is closed first. */
  whenRegistered(): Promise<void> {
    if (this.#state === 'registered') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new ClosedError('master connection'));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Queues a status update; it is sent now if registered, else after the next registration. */
  sendStatus(status: TaskStatusMsg): void {
    this.updates.push(status);
  }

  /**
   * Tells the master this agent is going away, so that it places nothing more here (see Leaving in borealis.proto).
   * Sent now if registered, and again after every later registration (the master clears it on a Register).
   */
  leave(reason: string): void {
    this.#leaving = reason;
    if (this.#state === 'registered') this.#write({ leaving: { reason } });
  }

  /** Waits (bounded) until every queued update is acknowledged, while registered; for a clean stop. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.updates.pending > 0 && this.#state === 'registered' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Stops for good: no reconnect, the socket closed cleanly (or destroyed after a bound). Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#timer?.cancel();
    this.#timer = undefined;
    this.updates.offline();
    for (const w of this.#waiters.splice(0)) w.reject(new ClosedError('master connection'));
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const bound = setTimeout(() => ws.terminate(), CLOSE_TIMEOUT_MS);
      bound.unref();
      ws.once('close', () => {
        clearTimeout(bound);
        resolve();
      });
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'agent stopping');
      else ws.terminate();
    });
  }

  #connect(): void {
    this.#timer = undefined;
    if (this.#state === 'closed') return;
    this.#state = 'connecting';
    const ws = new WebSocket(this.url, AGENT_SUBPROTOCOL, {
      // Frames are small protobufs; compression would cost more CPU than it saves bytes, per agent and master.
      perMessageDeflate: false,
      handshakeTimeout: this.#registerTimeoutMs,
    });
    this.#ws = ws;
    ws.on('open', () => this.#onOpen(ws));
    ws.on('message', (data, isBinary) => this.#onMessage(ws, data, isBinary));
    ws.on('pong', () => {
      this.#lastHeardAt = Date.now();
    });
    ws.on('error', (err) => {
      this.#lastError = err.message;
    });
    ws.on('close', (code, reason) => this.#onClose(ws, code, reason.toString()));
  }

  #onOpen(ws: WebSocket): void {
    if (ws !== this.#ws) return;
    this.#state = 'registering';
    this.#lastHeardAt = Date.now();
    let register: RegisterMsg;
    try {
      register = this.#handlers.register();
    } catch (err) {
      this.#log(`cannot build the registration: ${errorText(err)}`);
      ws.terminate();
      return;
    }
    if (!this.#write({ register })) return;
    this.#timer = this.#timers.after(this.#registerTimeoutMs, () => {
      this.#timer = undefined;
      if (ws !== this.#ws || this.#state !== 'registering') return;
      this.#log(`no Registered from the master within ${this.#registerTimeoutMs} ms; reconnecting`);
      ws.terminate();
    });
  }

  #onMessage(ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (ws !== this.#ws) return;
    this.#lastHeardAt = Date.now();
    if (!isBinary) {
      this.#log('ignoring a text frame from the master (the protocol is binary protobuf)');
      return;
    }
    const bytes = bytesOf(data);
    let msg: MasterMessage;
    try {
      msg = decodeMasterMessage(bytes);
    } catch (err) {
      this.#log(`ignoring a malformed frame from the master (${bytes.length} bytes): ${errorText(err)}`);
      return;
    }
    this.#safely('a master message', () => this.#dispatch(ws, msg));
  }

  #dispatch(ws: WebSocket, msg: MasterMessage): void {
    if (msg.registered !== undefined) {
      this.#onRegistered(ws, msg.registered);
    } else if (msg.launch !== undefined) {
      const task = msg.launch.task;
      if (task === undefined || typeof task.taskId !== 'string' || task.taskId === '') {
        this.#log('ignoring a LaunchTask without a task id');
        return;
      }
      this.#handlers.launch(task);
    } else if (msg.kill !== undefined) {
      if (!msg.kill.taskId) {
        this.#log('ignoring a KillTask without a task id');
        return;
      }
      this.#handlers.kill(msg.kill.taskId, msg.kill.graceMs ? msg.kill.graceMs : undefined);
    } else if (msg.ack !== undefined) {
      this.updates.ack(msg.ack.taskId ?? '', msg.ack.uuid ?? '');
    } else if (msg.error !== undefined) {
      this.#log(`protocol error from the master: ${msg.error.code || '(no code)'}: ${msg.error.message || '(no message)'}`);
    } else {
      this.#log('ignoring an empty message from the master');
    }
  }

  #onRegistered(ws: WebSocket, reg: NonNullable<MasterMessage['registered']>): void {
    const first = this.#state !== 'registered';
    this.#heartbeatMs = reg.heartbeatIntervalMs && reg.heartbeatIntervalMs > 0 ? reg.heartbeatIntervalMs : DEFAULT_HEARTBEAT_MS;
    if (first) {
      this.#state = 'registered';
      this.#registrations++;
      this.#backoff.reset();
      this.#lastError = undefined;
      this.#timer?.cancel(); // the registration timeout
      this.#scheduleHeartbeat(ws);
    }
    this.#safely('Registered', () =>
      this.#handlers.registered({ agentId: reg.agentId ?? '', heartbeatIntervalMs: this.#heartbeatMs, killTasks: reg.killTasks ?? [] }),
    );
    if (first) {
      // Before the resends: the master learns the agent is leaving before the lost updates that follow from it.
      if (this.#leaving !== undefined) this.#write({ leaving: { reason: this.#leaving } });
      // After the owner saw kill_tasks, so the resends go out before anything the kills will report.
      this.updates.online();
      for (const w of this.#waiters.splice(0)) w.resolve();
    }
  }

  #scheduleHeartbeat(ws: WebSocket): void {
    this.#timer = this.#timers.after(this.#heartbeatMs, () => {
      this.#timer = undefined;
      if (ws !== this.#ws || this.#state !== 'registered') return;
      const now = Date.now();
      const silence = Math.max(SILENT_INTERVALS * this.#heartbeatMs, MIN_SILENCE_MS);
      if (now - this.#lastHeardAt > silence) {
        this.#log(`nothing from the master for ${now - this.#lastHeardAt} ms; reconnecting`);
        ws.terminate();
        return;
      }
      let usage: TaskUsageMsg[] = [];
      this.#safely('usage', () => {
        usage = this.#handlers.usage();
      });
      this.#write({ heartbeat: { seq: ++this.#heartbeatSeq, usage } });
      try {
        ws.ping();
      } catch {
        // closing under us: the close handler reconnects
      }
      this.updates.retryDue(now);
      this.#scheduleHeartbeat(ws);
    });
  }

  #onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    const wasRegistered = this.#state === 'registered';
    this.#ws = undefined;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.updates.offline();
    if (this.#state === 'closed') return;
    this.#state = 'waiting';
    if (wasRegistered) this.#safely('disconnected', () => this.#handlers.disconnected?.());
    const delay = this.#backoff.next();
    const why = this.#lastError ?? `closed with code ${code}${reason ? ` (${reason})` : ''}`;
    this.#lastError = undefined;
    if (wasRegistered) {
      this.#log(`lost the master at ${this.url}: ${why}; tasks keep running; reconnecting in ${delay} ms`);
    } else if (this.#logAttempts) {
      this.#log(`cannot register with the master at ${this.url}: ${why}; retrying in ${delay} ms (attempt ${this.#backoff.attempt})`);
    }
    this.#timer = this.#timers.after(delay, () => this.#connect());
  }

  #write(msg: AgentMessage): boolean {
    const ws = this.#ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    let bytes: Uint8Array;
    try {
      bytes = encodeAgentMessage(msg);
    } catch (err) {
      this.#log(`cannot encode a message for the master: ${errorText(err)}`);
      return false;
    }
    ws.send(bytes);
    return true;
  }

  #safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log(`error while handling ${what}: ${errorText(err)}`);
    }
  }
}

/** `host:port` (or `[v6]:port`) to the agents' WebSocket URL. */
export function masterUrl(master: string): string {
  if (typeof master !== 'string' || !/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/.test(master)) {
    throw new InvalidArgumentError(`master ${JSON.stringify(master)} must be host:port`, [{ path: 'master', message: 'must be host:port' }]);
  }
  const port = Number(master.slice(master.lastIndexOf(':') + 1));
  if (port < 1 || port > 65535) {
    throw new InvalidArgumentError(`master port ${port} is outside 1-65535`, [{ path: 'master', message: 'port outside 1-65535' }]);
  }
  return `ws://${master}${AGENT_WS_PATH}`;
}

function bytesOf(data: WebSocket.RawData): Uint8Array {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return new Uint8Array(data);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The Register message both agents send: who they are, what they offer, what they run now. */
export function registerMessage(a: {
  agentId: string;
  hostname: string;
  advertiseIp: string;
  offer: AgentOffer;
  isolation: string;
  tasks: TaskStatusMsg[];
}): RegisterMsg {
  return {
    agentId: a.agentId,
    hostname: a.hostname,
    advertiseIp: a.advertiseIp,
    resources: a.offer.resources,
    attributes: a.offer.attributes,
    isolation: a.isolation,
    tasks: a.tasks,
    version: AGENT_VERSION,
  };
}
