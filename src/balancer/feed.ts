/**
 * Where the balancer learns the cluster's state: two feeds into the same ClusterModel.
 * - MasterFeed: in the master's process (`borealis up`), straight from its EventBus, after a snapshot of its state.
 * - RemoteFeed: from any master's `/v1/events` WebSocket (`borealis balancer --master`), so that several balancers
 *   can front one cluster. It starts with a forced resync (a full snapshot), then follows events; after a
 *   disconnect it reconnects with backoff and resumes after the last seq it applied, with no gap and no
 *   duplicate; when the master cannot replay that far, or restarted (a new epoch), it gets a resync and rebuilds.
 */
import WebSocket from 'ws';
import type { EventBus } from '../events/bus.js';
import type { AgentView, JobView, TaskView } from '../master/types.js';
import { EVENTS_PATH, EVENTS_PROTOBUF_SUBPROTOCOL, type StreamMessage, decodeFrameProto } from '../proto/events.js';
import type { ClusterModel } from './model.js';
import type { BalancerLogger } from './types.js';

export interface Feed {
  /** Resolves once the first full state is loaded. */
  readonly ready: Promise<void>;
  start(): void;
  close(): void;
}

/** What MasterFeed needs of a Master (a Master fits). */
export interface MasterSource {
  readonly events: EventBus;
  listJobs(): JobView[];
  listTasks(): TaskView[];
  listAgents(): AgentView[];
}

export class MasterFeed implements Feed {
  readonly ready: Promise<void> = Promise.resolve();
  readonly #master: MasterSource;
  readonly #model: ClusterModel;
  #off: (() => void) | null = null;

  constructor(master: MasterSource, model: ClusterModel) {
    this.#master = master;
    this.#model = model;
  }

  start(): void {
    if (this.#off) return;
    // Snapshot and subscribe in the same turn: the bus delivers synchronously, so no event falls between them.
    const m = this.#master;
    this.#model.reset({ jobs: m.listJobs(), tasks: m.listTasks(), agents: m.listAgents() });
    this.#off = m.events.subscribe((e) => this.#model.apply(e));
  }

  close(): void {
    this.#off?.();
    this.#off = null;
  }
}

/** The event types the model uses: the master filters the rest out before they cross the network. */
export const FEED_EVENT_TYPES = [
  'job_submitted',
  'job_killed',
  'job_finished',
  'task_state',
  'task_placed',
  'task_health',
  'task_killing',
  'agent_registered',
  'agent_reregistered',
] as const;

export interface RemoteFeedOptions {
  logger?: BalancerLogger;
  /** First reconnect delay; doubles per failure up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** 100 ms then doubling to 5 s: quick after a blip, gentle on a master that is down (as `borealis events`). */
const REMOTE_DEFAULTS = { minBackoffMs: 100, maxBackoffMs: 5_000 };
/** A master that does not complete the handshake by then is treated as unreachable (and retried). */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/** An epoch no master has: asking with it forces a resync, i.e. a full snapshot to start from. */
const NO_EPOCH = '0';

export class RemoteFeed implements Feed {
  readonly ready: Promise<void>;
  /** Connections opened, resyncs applied, events applied: for status lines and tests. */
  connects = 0;
  resyncs = 0;
  applied = 0;
  lastSeq = 0;
  epoch: string = NO_EPOCH;
  readonly #base: string;
  readonly #model: ClusterModel;
  readonly #log: BalancerLogger | undefined;
  readonly #o: typeof REMOTE_DEFAULTS;
  #ws: WebSocket | null = null;
  #timer: NodeJS.Timeout | null = null;
  #backoff: number;
  #closed = false;
  #started = false;
  #onReady: () => void = () => undefined;

  /** `master` is host:port of the master's API. */
  constructor(master: string, model: ClusterModel, opts: RemoteFeedOptions = {}) {
    this.#base = `ws://${master}${EVENTS_PATH}`;
    this.#model = model;
    this.#log = opts.logger;
    this.#o = { ...REMOTE_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([k, v]) => k !== 'logger' && v !== undefined)) };
    this.#backoff = this.#o.minBackoffMs;
    this.ready = new Promise((resolve) => (this.#onReady = resolve));
  }

  get connected(): boolean {
    return this.#ws !== null && this.#ws.readyState === WebSocket.OPEN;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#connect();
  }

  /** Drops the current connection as a network failure would (it reconnects and resumes). */
  dropConnection(): void {
    this.#ws?.terminate();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
    }
  }

  #connect(): void {
    this.#timer = null;
    if (this.#closed) return;
    const q = new URLSearchParams({ since: String(this.lastSeq), epoch: this.epoch, type: FEED_EVENT_TYPES.join(',') });
    const ws = new WebSocket(`${this.#base}?${q}`, [EVENTS_PROTOBUF_SUBPROTOCOL], { handshakeTimeout: HANDSHAKE_TIMEOUT_MS, perMessageDeflate: false });
    this.#ws = ws;
    ws.on('open', () => {
      this.connects++;
      this.#backoff = this.#o.minBackoffMs;
      this.#log?.info({ master: this.#base, since: this.lastSeq }, 'balancer feed connected');
    });
    ws.on('message', (data: WebSocket.RawData) => {
      if (this.#ws !== ws) return;
      try {
        this.#onMessage(decodeFrameProto(Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[])));
      } catch (err) {
        this.#log?.warn({ err: (err as Error).message }, 'balancer feed: bad frame; reconnecting');
        ws.terminate();
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      this.#log?.warn({ status: res.statusCode }, 'balancer feed: the master refused the event stream');
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      this.#log?.debug({ err: err.code ?? err.message }, 'balancer feed: connection error');
    });
    ws.on('close', () => {
      if (this.#ws !== ws || this.#closed) return;
      this.#ws = null;
      this.#timer = setTimeout(() => this.#connect(), this.#backoff);
      this.#timer.unref();
      this.#backoff = Math.min(this.#backoff * 2, this.#o.maxBackoffMs);
    });
  }

  #onMessage(m: StreamMessage): void {
    switch (m.type) {
      case 'hello':
        this.epoch = m.epoch;
        if (m.seq > this.lastSeq) this.lastSeq = m.seq;
        return;
      case 'resync': {
        // The first snapshot is how every feed starts; only a later one is a resync worth its reason.
        const first = this.resyncs === 0;
        this.epoch = m.epoch;
        this.lastSeq = m.seq;
        this.resyncs++;
        this.#model.reset(m.snapshot);
        if (first) this.#log?.info({ seq: m.seq, tasks: m.snapshot.tasks.length }, 'balancer feed: initial snapshot');
        else this.#log?.info({ seq: m.seq, reason: m.reason, tasks: m.snapshot.tasks.length }, 'balancer feed resynchronised');
        this.#onReady();
        return;
      }
      case 'close':
        this.#log?.info({ code: m.code, reason: m.reason }, 'balancer feed: the master closed the stream');
        return;
      case 'events':
        for (const e of m.events) {
          if (e.seq <= this.lastSeq) continue;
          this.lastSeq = e.seq;
          this.applied++;
          this.#model.apply(e);
        }
    }
  }
}
