/**
 * A fake master for the agent suites: a real `ws` server on 127.0.0.1 at /v1/agents/ws speaking the real protobuf
 * protocol. It records everything the agents send, answers Register with Registered, and acknowledges status
 * updates unless told to withhold them.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import {
  AGENT_SUBPROTOCOL,
  decodeAgentMessage,
  encodeMasterMessage,
  taskStateFromWire,
} from '../../src/proto/index.js';
import type { AgentMessage, MasterMessage, RegisterMsg, TaskInfoMsg, TaskStateName, TaskStatusMsg } from '../../src/proto/index.js';

export interface FakeConn {
  readonly ws: WebSocket;
  /** Index in the order connections arrived (across restarts only within one FakeMaster). */
  readonly index: number;
  agentId: string | undefined;
  readonly messages: AgentMessage[];
}

export interface Received {
  conn: FakeConn;
  status: TaskStatusMsg;
  state: TaskStateName | undefined;
}

export interface FakeMasterOptions {
  port?: number;
  heartbeatIntervalMs?: number;
}

export class FakeMaster {
  readonly port: number;
  readonly conns: FakeConn[] = [];
  readonly registrations: { conn: FakeConn; register: RegisterMsg }[] = [];
  readonly statuses: Received[] = [];
  readonly heartbeats: { conn: FakeConn; seq: number }[] = [];
  readonly badFrames: string[] = [];
  heartbeatIntervalMs: number;
  /** Decides, per status update, whether to acknowledge it now; withheld ones can be acked later with ack(). */
  shouldAck: (status: TaskStatusMsg) => boolean = () => true;
  /** Registered.kill_tasks for a registration. */
  killTasksFor: (register: RegisterMsg) => string[] = () => [];
  /** When false, Register gets no Registered (the agent times out). */
  answerRegister = true;
  readonly #wss: WebSocketServer;
  readonly #byTask = new Map<string, Received[]>();

  private constructor(wss: WebSocketServer, opts: FakeMasterOptions) {
    this.#wss = wss;
    this.port = (wss.address() as AddressInfo).port;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? 200;
    wss.on('connection', (ws) => this.#onConnection(ws));
  }

  static async start(opts: FakeMasterOptions = {}): Promise<FakeMaster> {
    const wss = await new Promise<WebSocketServer>((resolve, reject) => {
      const server = new WebSocketServer({
        host: '127.0.0.1',
        port: opts.port ?? 0,
        path: '/v1/agents/ws',
        perMessageDeflate: false,
        handleProtocols: (protocols) => (protocols.has(AGENT_SUBPROTOCOL) ? AGENT_SUBPROTOCOL : false),
      });
      server.once('listening', () => resolve(server));
      server.once('error', reject);
    });
    return new FakeMaster(wss, opts);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The newest connection of an agent (or the newest of all). */
  conn(agentId?: string): FakeConn | undefined {
    for (let i = this.conns.length - 1; i >= 0; i--) {
      const c = this.conns[i]!;
      if (agentId === undefined || c.agentId === agentId) return c;
    }
    return undefined;
  }

  openConns(): FakeConn[] {
    return this.conns.filter((c) => c.ws.readyState === c.ws.OPEN);
  }

  send(msg: MasterMessage, conn = this.#latest()): void {
    conn.ws.send(encodeMasterMessage(msg));
  }

  sendRaw(data: Buffer | string, conn = this.#latest()): void {
    conn.ws.send(data, { binary: typeof data !== 'string' });
  }

  launch(task: TaskInfoMsg, conn = this.#latest()): void {
    this.send({ launch: { task } }, conn);
  }

  kill(taskId: string, graceMs?: number, conn = this.#latest()): void {
    this.send({ kill: graceMs === undefined ? { taskId } : { taskId, graceMs } }, conn);
  }

  ack(status: TaskStatusMsg, conn = this.#latest()): void {
    this.send({ ack: { taskId: status.taskId, uuid: status.uuid ?? '' } }, conn);
  }

  /** Every update received for a task, resends included, in arrival order. */
  updatesOf(taskId: string): Received[] {
    return this.#byTask.get(taskId) ?? [];
  }

  /** The distinct states of a task in the order they first arrived. */
  statesOf(taskId: string): TaskStateName[] {
    const seen = new Set<string>();
    const out: TaskStateName[] = [];
    for (const r of this.updatesOf(taskId)) {
      if (seen.has(r.status.uuid ?? '')) continue;
      seen.add(r.status.uuid ?? '');
      if (r.state !== undefined) out.push(r.state);
    }
    return out;
  }

  lastOf(taskId: string): Received | undefined {
    const all = this.updatesOf(taskId);
    return all[all.length - 1];
  }

  /** Cuts every agent's connection, as a network failure would; the server keeps listening. */
  dropConnections(): void {
    for (const c of this.conns) c.ws.terminate();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #latest(): FakeConn {
    const c = this.conn();
    if (c === undefined) throw new Error('no agent has connected');
    return c;
  }

  #onConnection(ws: WebSocket): void {
    const conn: FakeConn = { ws, index: this.conns.length, agentId: undefined, messages: [] };
    this.conns.push(conn);
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.badFrames.push('text');
        return;
      }
      let msg: AgentMessage;
      try {
        msg = decodeAgentMessage(data as Buffer);
      } catch (err) {
        this.badFrames.push((err as Error).message);
        return;
      }
      conn.messages.push(msg);
      if (msg.register !== undefined) {
        conn.agentId = msg.register.agentId;
        this.registrations.push({ conn, register: msg.register });
        if (this.answerRegister) {
          this.send(
            {
              registered: {
                agentId: msg.register.agentId,
                heartbeatIntervalMs: this.heartbeatIntervalMs,
                killTasks: this.killTasksFor(msg.register),
              },
            },
            conn,
          );
        }
      } else if (msg.heartbeat !== undefined) {
        this.heartbeats.push({ conn, seq: msg.heartbeat.seq ?? 0 });
      } else if (msg.status !== undefined) {
        const status = msg.status.status;
        const received: Received = { conn, status, state: taskStateFromWire(status.state) };
        this.statuses.push(received);
        let list = this.#byTask.get(status.taskId);
        if (list === undefined) this.#byTask.set(status.taskId, (list = []));
        list.push(received);
        if (this.shouldAck(status)) this.ack(status, conn);
      }
    });
  }
}
