/**
 * The keep-alive connections to one endpoint: at most `maxConnections` of them, idle ones reused most recent
 * first (the fewest stay warm; the rest time out), requests beyond the limit waiting in FIFO order for the next
 * connection to come free. Upgrade requests get a connection of their own, outside the limit (it leaves the pool
 * on the 101; a WebSocket is not a pooled request).
 *
 * One sweep per pool drives every timeout of its connections (connect, response head, body idle, keep-alive
 * idle) at a tick of an eighth of the shortest limit (10 to 250 ms): no timer per request, and none at all while
 * the pool has no connection.
 */
import type { UpstreamTimeouts } from '../types.js';
import { Connection, type ConnectionHost, Phase } from './connection.js';
import type { DispatchOptions, UpstreamHandler, UpstreamPool } from './contract.js';
import { UpstreamCode, UpstreamError } from './errors.js';

export interface Http1PoolOptions {
  timeouts: UpstreamTimeouts;
  /** Pooled connections at most; further requests wait. */
  maxConnections: number;
  /** Idle connections close after this long (an endpoint's shorter Keep-Alive: timeout= wins). */
  keepAliveMs: number;
}

/** Bounds of the sweep's period: fine enough for short test timeouts, coarse enough to cost nothing. */
const MIN_TICK_MS = 10;
const MAX_TICK_MS = 250;
/** A consumed queue prefix is dropped once it is this long (and half the array): amortised, no shift() per request. */
const QUEUE_COMPACT_AT = 1024;

export class Http1Pool implements UpstreamPool, ConnectionHost {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  readonly timeouts: UpstreamTimeouts;
  readonly keepAliveMs: number;
  readonly maxConnections: number;
  readonly tickMs: number;
  now = Date.now();
  /** Every connection, pooled or opened for an upgrade (the sweep's list). */
  readonly #conns: Connection[] = [];
  /** Connections that count against maxConnections. */
  #pooled = 0;
  /** Idle connections, most recently used last. */
  readonly #idle: Connection[] = [];
  /** Waiting requests: options and handler, in pairs, from #head on. */
  #queue: (DispatchOptions | UpstreamHandler)[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | null = null;
  #closing = false;
  #destroyed = false;
  #closeWaiters: (() => void)[] = [];
  readonly #tick = (): void => this.#sweep();

  constructor(host: string, port: number, o: Http1PoolOptions) {
    this.host = host;
    this.port = port;
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.timeouts = o.timeouts;
    this.keepAliveMs = o.keepAliveMs;
    this.maxConnections = Math.max(1, o.maxConnections);
    const shortest = Math.min(o.timeouts.connectMs, o.timeouts.headersMs, o.timeouts.bodyIdleMs, o.keepAliveMs);
    this.tickMs = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(shortest / 8)));
  }

  /** Pooled connections open (or opening). */
  get connections(): number {
    return this.#pooled;
  }

  get idle(): number {
    return this.#idle.length;
  }

  get queued(): number {
    return (this.#queue.length - this.#head) >> 1;
  }

  dispatch(opts: DispatchOptions, handler: UpstreamHandler): void {
    if (this.#closing) {
      handler.onError(new UpstreamError(UpstreamCode.poolClosed, 'the endpoint left'));
      return;
    }
    if (opts.upgrade != null) {
      this.#open(opts, handler);
      return;
    }
    const c = this.#takeIdle();
    if (c !== null) c.assign(opts, handler);
    else if (this.#pooled < this.maxConnections) this.#open(opts, handler);
    else this.#queue.push(opts, handler);
  }

  close(): Promise<void> {
    this.#closing = true;
    for (const c of this.#idle.splice(0)) c.destroy(new UpstreamError(UpstreamCode.poolClosed, 'the pool closed'));
    if (this.#conns.length === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#closeWaiters.push(resolve));
  }

  destroy(): Promise<void> {
    this.#closing = true;
    this.#destroyed = true;
    const q = this.#queue;
    const from = this.#head;
    this.#queue = [];
    this.#head = 0;
    for (let i = from; i < q.length; i += 2) {
      (q[i + 1] as UpstreamHandler).onError(new UpstreamError(UpstreamCode.poolClosed, 'the endpoint left'));
    }
    for (const c of this.#conns.slice()) c.destroy(new UpstreamError(UpstreamCode.destroyed, 'the pool was destroyed'));
    this.#settle();
    return Promise.resolve();
  }

  // ---- ConnectionHost ------------------------------------------------------------------------------

  released(c: Connection): void {
    if (this.#head < this.#queue.length) {
      const opts = this.#queue[this.#head] as DispatchOptions;
      const handler = this.#queue[this.#head + 1] as UpstreamHandler;
      this.#dequeued();
      c.assign(opts, handler);
    } else if (this.#closing) {
      c.destroy(new UpstreamError(UpstreamCode.poolClosed, 'the pool closed'));
    } else {
      this.#idle.push(c);
    }
  }

  removed(c: Connection): void {
    const conns = this.#conns;
    const i = c.index;
    if (i >= 0 && conns[i] === c) {
      const last = conns.pop()!;
      if (last !== c) {
        conns[i] = last;
        last.index = i;
      }
      c.index = -1;
      if (!c.forUpgrade) this.#pooled--;
    }
    const j = this.#idle.indexOf(c);
    if (j >= 0) this.#idle.splice(j, 1);
    // A slot came free: the oldest waiting request gets a new connection.
    if (!this.#destroyed && this.#head < this.#queue.length && this.#pooled < this.maxConnections) {
      const opts = this.#queue[this.#head] as DispatchOptions;
      const handler = this.#queue[this.#head + 1] as UpstreamHandler;
      this.#dequeued();
      this.#open(opts, handler);
    }
    this.#settle();
  }

  // ---- internals -------------------------------------------------------------------------------------

  #open(opts: DispatchOptions, handler: UpstreamHandler): void {
    if (this.#timer === null) {
      this.now = Date.now();
      this.#timer = setInterval(this.#tick, this.tickMs);
      this.#timer.unref();
    }
    const c = new Connection(this, opts, handler);
    c.index = this.#conns.length;
    this.#conns.push(c);
    if (!c.forUpgrade) this.#pooled++;
  }

  #takeIdle(): Connection | null {
    const idle = this.#idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (c.fresh(this.now)) return c;
      // Idle too long (the sweep had not come round yet): the endpoint may be closing it right now.
      if (c.phase === Phase.IDLE) c.destroy(new UpstreamError(UpstreamCode.poolClosed, 'idle too long'));
    }
    return null;
  }

  #dequeued(): void {
    const q = this.#queue;
    q[this.#head] = undefined as unknown as DispatchOptions;
    q[this.#head + 1] = undefined as unknown as UpstreamHandler;
    this.#head += 2;
    if (this.#head === q.length) {
      q.length = 0;
      this.#head = 0;
    } else if (this.#head >= QUEUE_COMPACT_AT && this.#head * 2 >= q.length) {
      q.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #sweep(): void {
    const now = (this.now = Date.now());
    const conns = this.#conns;
    // Backwards: a connection that ends is swapped with the last one, which was already seen.
    for (let i = conns.length - 1; i >= 0; i--) conns[i]?.sweep(now);
  }

  /** Stops the sweep once nothing is left, and ends a close() once everything has finished. */
  #settle(): void {
    if (this.#conns.length > 0) return;
    if (this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    if (this.#closing && this.queued === 0 && this.#closeWaiters.length > 0) {
      for (const resolve of this.#closeWaiters.splice(0)) resolve();
    }
  }
}
