/**
 * Balancer test kit: real backends (node:http on 127.0.0.1:0) that record what they received, balancers on any
 * front end, raw-socket clients, and cleanup of all of it after each test.
 *
 * FRONT_ENDS lists the front ends every behaviour suite runs against: node:http, and uWebSockets.js wherever its
 * native binary loads.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type Socket, connect } from 'node:net';
import { Agent, type Dispatcher, request } from 'undici';
import { afterEach } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { Balancer, type BalancerOptions, type FrontEndFactory, nodeFrontEnd } from '../../src/balancer/index.js';
import type { AgentView, ClusterEvent, JobView, TaskView } from '../../src/master/types.js';
import type { EventInput } from '../../src/events/bus.js';
import { uwsFrontEnd } from '../../src/balancer/front-choice.js';
import type { UwsSharedModule } from '../../src/balancer/uws-types.js';
import { NATIVE_ENV, loadNative } from '../../src/transport/native.js';

/** uWebSockets.js' native module, or null when it cannot load here (its suites are then skipped, loudly). */
export const UWS = loadNative({ ...process.env, [NATIVE_ENV]: '' }).uws as UwsSharedModule | null;
if (UWS === null) process.emitWarning('uWebSockets.js did not load: the balancer suites run on node:http only');

export const FRONT_ENDS = (UWS === null ? ['node'] : ['node', 'uws']) as readonly ('node' | 'uws')[];
export type FrontEndName = 'node' | 'uws';

export function frontEndOf(name: FrontEndName): FrontEndFactory {
  switch (name) {
    case 'node':
      return nodeFrontEnd;
    case 'uws':
      if (UWS === null) throw new Error('uWebSockets.js is not available');
      return uwsFrontEnd(UWS);
  }
}

/** What a backend saw of one request. */
export interface Received {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: IncomingMessage['headers'];
  bodyBytes: number;
}

export type BackendHandler = (req: IncomingMessage, res: ServerResponse, backend: Backend) => void;

export interface Backend {
  name: string;
  port: number;
  address: string;
  server: Server;
  received: Received[];
  /** Requests whose body has fully arrived, so far. */
  readonly count: number;
  /** Stops listening and cuts every connection (a killed task). */
  kill(): Promise<void>;
}

/** Polls until `predicate` holds (returns its value) or fails naming `what`. */
export async function waitFor<T>(predicate: () => T | false | undefined | null | Promise<T | false | undefined | null>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Answers `<name> <method> <url>` after reading the whole body (the default handler). */
export const echoName: BackendHandler = (req, res, b) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${b.name} ${req.method} ${req.url}\n`);
};

/**
 * A handler that holds every `/hold` request open (its response goes to `held`, for the test to end) and answers
 * anything else with the backend's name: a busy endpoint on demand.
 */
export function holdingHandler(held: ServerResponse[]): BackendHandler {
  return (req, res, b) => {
    if (req.url === '/hold') held.push(res);
    else res.end(`${b.name}\n`);
  };
}

export interface Fixture {
  backend(name: string, handler?: BackendHandler): Promise<Backend>;
  balancer(front: FrontEndName, opts: Omit<BalancerOptions, 'frontEnd'>): Promise<Balancer>;
  /** An HTTP client whose connections are closed after the test. */
  client: () => Dispatcher;
  onCleanup(fn: () => unknown): void;
}

export function balancerFixture(): Fixture {
  const cleanups: (() => unknown)[] = [];
  let agent: Agent | null = null;
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
    if (agent) await agent.destroy();
    agent = null;
  });
  return {
    async backend(name, handler = echoName) {
      const received: Received[] = [];
      const sockets = new Set<Socket>();
      let count = 0;
      const b: Backend = {
        name,
        port: 0,
        address: '',
        server: null as unknown as Server,
        received,
        get count() {
          return count;
        },
        kill: async () => {
          for (const s of sockets) s.destroy();
          await new Promise<void>((r) => b.server.close(() => r()));
        },
      };
      b.server = createServer((req, res) => {
        const rec: Received = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, bodyBytes: 0 };
        received.push(rec);
        req.on('data', (c: Buffer) => (rec.bodyBytes += c.length));
        req.on('end', () => count++);
        handler(req, res, b);
      });
      b.server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
      b.port = (b.server.address() as { port: number }).port;
      b.address = `127.0.0.1:${b.port}`;
      cleanups.push(async () => {
        for (const s of sockets) s.destroy();
        if (b.server.listening) await new Promise<void>((r) => b.server.close(() => r()));
      });
      return b;
    },
    async balancer(front, opts) {
      const bal = new Balancer({ listen: { host: '127.0.0.1', port: 0 }, closeGraceMs: 200, ...opts, frontEnd: frontEndOf(front) });
      cleanups.push(() => bal.close());
      await bal.start();
      return bal;
    },
    client: () => (agent ??= new Agent({ connections: 64 })),
    onCleanup: (fn) => cleanups.push(fn),
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request through `dispatcher` (body read as text). */
export async function send(
  dispatcher: Dispatcher,
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const r = await request(url, { dispatcher, method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

/**
 * Writes raw bytes on a fresh connection and returns everything the server sent until it closed the connection
 * (or `idleMs` of silence after some bytes, for a keep-alive answer, or `maxMs` in all, for a server that holds a
 * request it will never answer).
 */
export function rawExchange(port: number, bytes: string | Buffer, idleMs = 300, maxMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    const cap = setTimeout(() => done(), maxMs);
    const done = (): void => {
      clearTimeout(cap);
      if (timer) clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (timer) clearTimeout(timer);
      timer = setTimeout(done, idleMs);
    });
    s.on('end', done);
    s.on('close', done);
    s.on('error', (e) => (chunks.length > 0 ? done() : reject(e)));
    s.write(bytes);
  });
}

/**
 * A stand-in master for MasterFeed: an EventBus plus (empty) lists for the snapshot; tests publish the events a
 * master would, after the balancer started. (The snapshot path is covered with a real master in feed tests.)
 */
export class FakeMaster {
  readonly events = new EventBus();
  readonly jobs: JobView[] = [];
  readonly tasks: TaskView[] = [];
  readonly agents: AgentView[] = [];

  listJobs(): JobView[] {
    return this.jobs;
  }
  listTasks(): TaskView[] {
    return this.tasks;
  }
  listAgents(): AgentView[] {
    return this.agents;
  }

  publish(e: EventInput): ClusterEvent {
    return this.events.publish(e);
  }

  /** job_submitted for a service with an http section. */
  service(name: string, http: Record<string, unknown> = {}): void {
    this.publish({ type: 'job_submitted', job: name, data: { type: 'service', instances: 1, cpus: 1, http } });
  }

  /** A task placed on `agentId` at 127.0.0.1:`port` and running. */
  running(job: string, taskId: string, port: number, agentId = 'a1'): void {
    this.publish({ type: 'task_placed', job, taskId, agentId, state: 'staging', data: { from: 'pending', host: '127.0.0.1', ports: [port] } });
    this.publish({ type: 'task_state', job, taskId, agentId, state: 'running', data: { from: 'staging' } });
  }
}
