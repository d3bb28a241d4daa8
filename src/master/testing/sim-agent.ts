import { randomUUID } from 'node:crypto';
import {
  type AgentMessage,
  type MasterMessage,
  type PortRangeMsg,
  type TaskInfoMsg,
  type TaskStateName,
  type TaskStatusMsg,
  decodeMasterMessage,
  encodeAgentMessage,
  taskStateToWire,
} from '../../proto/index.js';
import type { AgentConnection } from '../agent-connection.js';

/**
 * In-process agents for tests and benchmarks: the real protobuf protocol over an in-memory
 * AgentConnection pair, no sockets, no processes. (The agent engineer's simulated agent speaks the
 * same protocol over a real WebSocket; this one exists so the master can be exercised alone.)
 */

type Side = {
  handlers: ((bytes: Uint8Array) => void)[];
  closers: (() => void)[];
  inbox: Uint8Array[];
  scheduled: boolean;
};

/**
 * Two connected AgentConnection ends. Frames are delivered in order on a later turn of the event
 * loop (setImmediate, in batches), as a socket would: no handler ever runs inside the sender's call.
 */
export interface PairState {
  closed: boolean;
  /** Who closed it, with what code and reason. */
  closeInfo: { code: number; reason: string } | null;
}

export function connectionPair(
  agentAddress = '127.0.0.1:5051',
  masterAddress = '127.0.0.1:5050',
): { master: AgentConnection; agent: AgentConnection; state: PairState } {
  const state: PairState = { closed: false, closeInfo: null };
  const mk = (): Side => ({ handlers: [], closers: [], inbox: [], scheduled: false });
  const masterSide = mk();
  const agentSide = mk();
  const deliver = (to: Side, bytes: Uint8Array): void => {
    if (state.closed) return;
    to.inbox.push(bytes);
    if (to.scheduled) return;
    to.scheduled = true;
    setImmediate(() => {
      to.scheduled = false;
      // Frames sent before a close are still delivered (a WebSocket close is orderly); the close
      // callbacks are scheduled after them.
      for (const b of to.inbox.splice(0)) for (const h of to.handlers) h(b);
    });
  };
  const close = (code: number, reason: string): void => {
    if (state.closed) return;
    state.closed = true;
    state.closeInfo = { code, reason };
    setImmediate(() => {
      for (const c of masterSide.closers) c();
      for (const c of agentSide.closers) c();
    });
  };
  const end = (self: Side, peer: Side, remoteAddress: string): AgentConnection => ({
    send: (bytes) => deliver(peer, bytes),
    close,
    onMessage: (cb) => {
      self.handlers.push(cb);
    },
    onClose: (cb) => {
      self.closers.push(cb);
    },
    remoteAddress,
  });
  return { master: end(masterSide, agentSide, agentAddress), agent: end(agentSide, masterSide, masterAddress), state };
}

/** Anything agents can attach to (the Master). */
export interface AgentAcceptor {
  attachAgent(conn: AgentConnection): void;
}

export interface SimTask {
  info: TaskInfoMsg;
  state: TaskStateName;
}

export interface SimAgentOptions {
  id: string;
  hostname?: string;
  advertiseIp?: string;
  /** Table units. Default: 8 cores, 16 GiB, 100 GiB disk, ports 31000-31999. */
  cpusMilli?: number;
  memMib?: number;
  diskMib?: number;
  gpus?: number;
  ports?: PortRangeMsg[];
  attributes?: Record<string, string>;
  /**
   * What a launched task does. Default: reports starting, then running. Call `agent.report()`
   * (now or later) to script anything else.
   */
  onLaunch?: (task: TaskInfoMsg, agent: SimAgent) => void;
  /** Reply to KillTask with a `killed` update (default true). */
  honourKills?: boolean;
  /** The connection's far end as the master sees it (default `<advertiseIp>:5051`). */
  peerAddress?: string;
}

/**
 * A minimal agent: registers (with the tasks it runs, for reconciliation), heartbeats at the
 * interval the master gives, "runs" launched tasks as records, reports status updates and resends
 * each until the master acknowledges its uuid (again after every reconnect), and obeys KillTask and
 * Registered.kill_tasks.
 */
export class SimAgent {
  readonly id: string;
  readonly tasks = new Map<string, SimTask>();
  /** Every LaunchTask ever received, in order: the "nothing launched twice" audit. */
  readonly launches: string[] = [];
  readonly kills: string[] = [];
  readonly errors: { code: string; message: string }[] = [];
  /** Registered replies received. */
  registrations = 0;
  private readonly opts: SimAgentOptions;
  private conn: AgentConnection | null = null;
  private pair: ReturnType<typeof connectionPair> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private heartbeatMs = 1_000;
  private seq = 0;
  private readonly unacked = new Map<string, TaskStatusMsg>();
  private silent = false;
  private registered: (() => void) | null = null;

  constructor(opts: SimAgentOptions) {
    this.opts = opts;
    this.id = opts.id;
  }

  get connected(): boolean {
    return this.conn !== null;
  }

  /**
   * Connects and registers; resolves when the master replied Registered. A connection still open
   * is abandoned, not closed (as a restarted agent process leaves it): the master supersedes it.
   */
  connect(master: AgentAcceptor): Promise<void> {
    this.dropConnection();
    const pair = connectionPair(this.opts.peerAddress ?? `${this.opts.advertiseIp || '127.0.0.1'}:5051`);
    this.pair = pair;
    const conn = pair.agent;
    this.conn = conn;
    this.silent = false;
    conn.onMessage((bytes) => this.onFrame(conn, bytes));
    conn.onClose(() => {
      if (this.conn === conn) this.dropConnection();
    });
    master.attachAgent(pair.master);
    const done = new Promise<void>((resolve) => {
      this.registered = resolve;
    });
    this.send({
      register: {
        agentId: this.id,
        hostname: this.opts.hostname ?? this.id,
        advertiseIp: this.opts.advertiseIp ?? '127.0.0.1',
        resources: {
          cpusMilli: this.opts.cpusMilli ?? 8000,
          memMib: this.opts.memMib ?? 16384,
          diskMib: this.opts.diskMib ?? 102400,
          gpus: this.opts.gpus ?? 0,
          ports: this.opts.ports ?? [{ begin: 31000, end: 31999 }],
        },
        attributes: this.opts.attributes ?? {},
        isolation: 'simulated',
        tasks: [...this.tasks.entries()].map(([taskId, t]) => ({ taskId, state: taskStateToWire(t.state) })),
        version: 'sim',
      },
    });
    return done;
  }

  /** Close code and reason of the last connection, if the master closed it. */
  get lastClose(): { code: number; reason: string } | null {
    return this.pair?.state.closeInfo ?? null;
  }

  /** Drops the connection (a network cut the master sees as a close); tasks keep "running". */
  disconnect(): void {
    this.conn?.close(1006, 'simulated disconnect');
    this.dropConnection();
  }

  /** Stops talking without closing (a partition): no heartbeats, no updates reach the master. */
  silence(): void {
    this.silent = true;
  }

  /** Reports a task state; the update is resent until acknowledged. */
  report(taskId: string, state: TaskStateName, extra: { reason?: string; message?: string; exitCode?: number; healthy?: boolean } = {}): void {
    const t = this.tasks.get(taskId);
    if (t) t.state = state;
    const status: TaskStatusMsg = { taskId, state: taskStateToWire(state), uuid: randomUUID(), timestampMs: Date.now(), ...extra };
    this.unacked.set(status.uuid!, status);
    this.send({ status: { status } });
    if (state === 'finished' || state === 'failed' || state === 'killed' || state === 'lost') this.tasks.delete(taskId);
  }

  /** Ends a task on its own (as a crash or an exit would). */
  fail(taskId: string, reason = 'exited', exitCode = 1): void {
    this.report(taskId, 'failed', { reason, exitCode });
  }

  finish(taskId: string): void {
    this.report(taskId, 'finished', { reason: 'exited', exitCode: 0 });
  }

  get pendingAcks(): number {
    return this.unacked.size;
  }

  /** Stops timers and closes the connection. */
  stop(): void {
    this.disconnect();
  }

  private dropConnection(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.conn = null;
  }

  private send(m: AgentMessage): void {
    if (!this.conn || this.silent) return;
    this.conn.send(encodeAgentMessage(m));
  }

  private onFrame(conn: AgentConnection, bytes: Uint8Array): void {
    if (conn !== this.conn) return;
    const m: MasterMessage = decodeMasterMessage(bytes);
    if (m.registered) {
      this.registrations++;
      for (const id of m.registered.killTasks ?? []) {
        this.kills.push(id);
        this.tasks.delete(id);
      }
      this.heartbeatMs = m.registered.heartbeatIntervalMs || this.heartbeatMs;
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.send({ heartbeat: { seq: ++this.seq } }), this.heartbeatMs);
      this.heartbeat.unref();
      // Updates the previous master (or connection) never acknowledged.
      for (const status of this.unacked.values()) this.send({ status: { status } });
      const r = this.registered;
      this.registered = null;
      r?.();
    } else if (m.launch) {
      const info = m.launch.task;
      this.launches.push(info.taskId);
      this.tasks.set(info.taskId, { info, state: 'staging' });
      if (this.opts.onLaunch) {
        this.opts.onLaunch(info, this);
      } else {
        this.report(info.taskId, 'starting');
        this.report(info.taskId, 'running');
      }
    } else if (m.kill) {
      this.kills.push(m.kill.taskId);
      if (this.tasks.has(m.kill.taskId) && this.opts.honourKills !== false) this.report(m.kill.taskId, 'killed', { reason: 'killed' });
    } else if (m.ack) {
      this.unacked.delete(m.ack.uuid);
    } else if (m.error) {
      this.errors.push(m.error);
    }
  }
}
