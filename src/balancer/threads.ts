/**
 * `borealis balancer --threads N`: N proxy threads, each a uWebSockets.js App listening on the same port
 * (SO_REUSEPORT; the kernel spreads new connections over them), and this main thread, which owns the feed and the
 * endpoint set and does no proxying.
 *
 * - The endpoint set reaches the threads as messages (thread-protocol.ts), in the order the feed changed it.
 * - Active requests per endpoint live in one SharedArrayBuffer that every thread updates with Atomics, so each
 *   thread's least-connections sees the requests the other threads have in flight.
 * - Figures (requests, errors, ejections, latency) are reported by each thread every STATS_INTERVAL_MS and summed
 *   here into this thread's registry, so `metrics` (Prometheus) and `balancer_stats` snapshots cover all threads.
 * - Outlier ejection is per thread (thread-worker.ts says why).
 *
 * Only on uWebSockets.js: node:http cannot share a listening port between threads of one process (its `cluster`
 * module shares one between processes, which would also need the counters in shared memory across processes).
 */
import { Worker } from 'node:worker_threads';
import { build as buildHistogram, decodeFromCompressedBase64 } from 'hdr-histogram-js';
import type { Registry } from 'prom-client';
import { DEFAULT_BALANCER_LISTEN, STATIC_SERVICE } from './balancer.js';
import type { EndpointSpec, RegistryChange } from './endpoints.js';
import { type Endpoint, EndpointRegistry } from './endpoints.js';
import { type Feed, RemoteFeed } from './feed.js';
import { freePort } from '../transport/uws-lifecycle.js';
import { BalancerMetrics } from './metrics.js';
import { ClusterModel } from './model.js';
import { type FromThread, MAX_THREADED_ENDPOINTS, type ThreadConfig, type ToThread } from './thread-protocol.js';
import { ERROR_KINDS, REFUSAL_KINDS, type BalancerLogger, type BalancerStats, type OutlierOptions, type RequestLimits, type UpstreamTimeouts } from './types.js';
import { POOL_DEFAULTS, TIMEOUT_DEFAULTS } from './upstream.js';
import { definedOnly } from '../util/defined-only.js';

export interface ThreadedBalancerOptions {
  threads: number;
  feed: { remote: string } | { static: readonly EndpointSpec[] };
  listen?: { host: string; port: number };
  timeouts?: Partial<UpstreamTimeouts>;
  outlier?: Partial<OutlierOptions>;
  limits?: Partial<RequestLimits>;
  maxConnectionsPerEndpoint?: number;
  metricsRegistry?: Registry;
  onStats?: (stats: BalancerStats) => void;
  statsIntervalMs?: number;
  closeGraceMs?: number;
  logger?: BalancerLogger;
}

/** Threads report their figures this often: fresh enough for /metrics and the once-a-second stats. */
const STATS_INTERVAL_MS = 250;
const CLOSE_GRACE_MS = 5_000;
/** More threads than this is a configuration mistake on any machine this runs on. */
export const MAX_THREADS = 64;
const KINDS = ERROR_KINDS.length;

/**
 * Starts thread-worker: compiled (.js), or from the TypeScript sources (tests, `--import tsx src/cli/main.ts`).
 * tsx's `--import` hooks do not reach worker threads here, so from sources a one-line script registers them through
 * tsx's API in the thread, then imports the entry.
 */
function startWorker(cfg: ThreadConfig): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./thread-worker.js', import.meta.url), { workerData: cfg });
  const entry = new URL('./thread-worker.ts', import.meta.url).href;
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: cfg });
}

/** Slots shared by every thread, and when one may be given out again. */
class SlotBook {
  readonly #free: number[] = [];
  #used = 0;
  /** Removed slots: confirmations still expected from threads. */
  readonly #acks = new Map<number, number>();
  /** Removed slots every thread confirmed, waiting for their last request to end. */
  readonly #settling = new Set<number>();

  constructor(readonly active: Int32Array) {}

  take(): number | null {
    const s = this.#free.pop() ?? (this.#used < MAX_THREADED_ENDPOINTS ? this.#used++ : null);
    return s;
  }

  removed(slot: number, threads: number): void {
    this.#acks.set(slot, threads);
  }

  confirmed(slot: number): void {
    const left = (this.#acks.get(slot) ?? 1) - 1;
    if (left > 0) {
      this.#acks.set(slot, left);
      return;
    }
    this.#acks.delete(slot);
    this.#settling.add(slot);
    this.settle();
  }

  /** No thread can pick a confirmed slot any more, so its count only falls: at zero it is free. */
  settle(): void {
    for (const s of this.#settling) {
      if (Atomics.load(this.active, s) === 0) {
        this.#settling.delete(s);
        this.#free.push(s);
      }
    }
  }
}

interface ThreadState {
  worker: Worker;
  /** Cumulative figures last reported, by endpoint id and by service. */
  endpoints: Map<string, { requests: number; errors: number[]; ejections: number }>;
  services: Map<string, { requests: number; errors: number[] }>;
  refused: number[];
}

export class ThreadedBalancer {
  readonly registry: EndpointRegistry;
  readonly metrics: BalancerMetrics;
  readonly model: ClusterModel;
  readonly feed: Feed | null;
  readonly threads: number;
  /** For the start-up line. */
  readonly front = { transport: 'uWebSockets.js' };
  readonly #o: ThreadedBalancerOptions;
  readonly #log: BalancerLogger | undefined;
  readonly #active = new Int32Array(new SharedArrayBuffer(MAX_THREADED_ENDPOINTS * 4));
  readonly #slots = new SlotBook(this.#active);
  /** This thread's endpoints' shared slots. */
  readonly #slotOf = new Map<Endpoint, number>();
  readonly #threads: ThreadState[] = [];
  #address: { host: string; port: number } | null = null;
  #starting: Promise<{ host: string; port: number }> | null = null;
  #closing: Promise<void> | null = null;
  #statsTimer: NodeJS.Timeout | null = null;

  constructor(opts: ThreadedBalancerOptions) {
    if (!Number.isInteger(opts.threads) || opts.threads < 1 || opts.threads > MAX_THREADS) {
      throw new TypeError(`threads must be an integer in 1..${MAX_THREADS}, got ${opts.threads}`);
    }
    this.#o = opts;
    this.#log = opts.logger;
    this.threads = opts.threads;
    this.registry = new EndpointRegistry({ onChange: (c) => this.#changed(c) });
    this.metrics = new BalancerMetrics(this.registry, opts.metricsRegistry);
    this.model = new ClusterModel(this.registry);
    if ('remote' in opts.feed) {
      this.feed = new RemoteFeed(opts.feed.remote, this.model, opts.logger ? { logger: opts.logger } : {});
    } else {
      this.feed = null;
      this.registry.setService(STATIC_SERVICE, {});
      for (const e of opts.feed.static) this.registry.upsert(STATIC_SERVICE, e);
    }
  }

  get address(): { host: string; port: number } | null {
    return this.#address;
  }

  get url(): string {
    const a = this.#address;
    if (!a) throw new Error('the balancer is not listening');
    return `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  /** Requests each thread has routed so far (as last reported; reports come every STATS_INTERVAL_MS). */
  requestsPerThread(): number[] {
    return this.#threads.map((t) => [...t.services.values()].reduce((n, s) => n + s.requests, 0));
  }

  /** The shared active count of an endpoint (every thread's requests in flight on it). */
  activeOf(ep: Endpoint): number {
    const s = this.#slotOf.get(ep);
    return s === undefined ? 0 : Atomics.load(this.#active, s);
  }

  start(): Promise<{ host: string; port: number }> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<{ host: string; port: number }> {
    const want = this.#o.listen ?? DEFAULT_BALANCER_LISTEN;
    // Every thread binds the same port; 0 becomes one free port first (uWS' port-0 binds also lack SO_REUSEADDR).
    const port = want.port === 0 ? await freePort(want.host) : want.port;
    const cfg: ThreadConfig = {
      active: this.#active.buffer as SharedArrayBuffer,
      host: want.host,
      port,
      limits: definedOnly(this.#o.limits ?? {}),
      timeouts: { ...TIMEOUT_DEFAULTS, ...definedOnly(this.#o.timeouts ?? {}) },
      outlier: this.#o.outlier ?? {},
      maxConnections: this.#o.maxConnectionsPerEndpoint ?? POOL_DEFAULTS.maxConnections,
      keepAliveMs: POOL_DEFAULTS.keepAliveMs,
      statsIntervalMs: STATS_INTERVAL_MS,
    };
    const started = await Promise.allSettled(Array.from({ length: this.threads }, () => this.#spawn(cfg)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.#stopThreads(0);
      throw failed.reason;
    }
    this.#address = { host: want.host, port };
    this.feed?.start();
    const interval = this.#o.statsIntervalMs ?? 1_000;
    this.#statsTimer = setInterval(() => {
      this.#slots.settle();
      this.#copyActive();
      if (this.#o.onStats) {
        const s = this.metrics.snapshot(`${want.host}:${port}`);
        if (s) this.#o.onStats(s);
      }
    }, interval);
    this.#statsTimer.unref();
    this.#log?.info(
      { listen: `${want.host}:${port}`, transport: 'uWebSockets.js', threads: this.threads },
      `balancer listening on ${want.host}:${port} (uWebSockets.js; ${this.threads} threads sharing the port)`,
    );
    return this.#address;
  }

  /** The messages that bring a new thread to the current endpoint set. */
  #replay(): ToThread[] {
    const out: ToThread[] = [this.#routes()];
    for (const s of this.registry.services.values()) {
      for (const ep of s.endpoints.values()) {
        const slot = this.#slotOf.get(ep);
        if (slot === undefined) continue;
        out.push({ t: 'add', service: s.name, id: ep.id, host: ep.host, port: ep.port, weight: this.registry.table.weight[ep.slot], slot });
        if (this.registry.stateOf(ep) === 'draining') out.push({ t: 'drain', id: ep.id });
      }
    }
    return out;
  }

  #spawn(cfg: ThreadConfig): Promise<void> {
    const worker = startWorker(cfg);
    const t: ThreadState = { worker, endpoints: new Map(), services: new Map(), refused: new Array<number>(REFUSAL_KINDS.length).fill(0) };
    return new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (m: FromThread) => {
        switch (m.t) {
          case 'listening':
            worker.off('error', reject);
            worker.on('error', (err) => this.#log?.error({ err: String(err) }, 'balancer thread failed'));
            // From now on it gets every change; first, the set as it is.
            this.#threads.push(t);
            for (const r of this.#replay()) worker.postMessage(r);
            resolve();
            return;
          case 'failed':
            reject(new Error(m.message));
            return;
          case 'removed':
            this.#slots.confirmed(m.slot);
            return;
          case 'stats':
            this.#fold(t, m);
            return;
          case 'closed':
            return;
        }
      });
      worker.once('exit', (code) => reject(new Error(`balancer thread exited (${code}) before listening`)));
    });
  }

  #broadcast(m: ToThread): void {
    for (const t of this.#threads) t.worker.postMessage(m);
  }

  #routes(): ToThread {
    return { t: 'routes', services: [...this.registry.services.values()].map((s) => ({ name: s.name, route: { hosts: s.route.hosts, pathPrefix: s.route.pathPrefix } })) };
  }

  /** The feed changed this thread's registry: the threads follow, in the same order. */
  #changed(c: RegistryChange): void {
    if (this.metrics !== undefined) this.metrics.changed = true;
    if (c.kind === 'routes') {
      this.#broadcast(this.#routes());
      return;
    }
    const ep = c.endpoint;
    switch (c.kind) {
      case 'added': {
        const slot = this.#slots.take();
        if (slot === null) {
          this.#log?.error({ endpoint: ep.id }, `balancer: more than ${MAX_THREADED_ENDPOINTS} endpoints; ${ep.id} is left out`);
          return;
        }
        this.#slotOf.set(ep, slot);
        this.#broadcast({ t: 'add', service: ep.service.name, id: ep.id, host: ep.host, port: ep.port, weight: this.registry.table.weight[ep.slot], slot });
        this.#log?.info({ service: ep.service.name, endpoint: ep.id, address: ep.address }, 'balancer endpoint added');
        return;
      }
      case 'weight':
        this.#broadcast({ t: 'weight', id: ep.id, weight: this.registry.table.weight[ep.slot] });
        return;
      case 'draining':
        this.#broadcast({ t: 'drain', id: ep.id });
        this.#log?.info({ service: ep.service.name, endpoint: ep.id }, 'balancer endpoint draining');
        return;
      case 'removed': {
        const slot = this.#slotOf.get(ep);
        if (slot === undefined) return;
        this.#slotOf.delete(ep);
        this.#slots.removed(slot, this.#threads.length);
        this.#broadcast({ t: 'remove', id: ep.id, slot });
        if (this.#threads.length === 0) this.#slots.confirmed(slot);
        this.#log?.info({ service: ep.service.name, endpoint: ep.id }, 'balancer endpoint removed');
        return;
      }
      default:
        return;
    }
  }

  /** A thread's cumulative figures: the change since its last report is added to this thread's registry. */
  #fold(t: ThreadState, m: Extract<FromThread, { t: 'stats' }>): void {
    const table = this.registry.table;
    let changed = false;
    for (const e of m.endpoints) {
      const prev = t.endpoints.get(e.id) ?? { requests: 0, errors: new Array<number>(KINDS).fill(0), ejections: 0 };
      t.endpoints.set(e.id, e);
      const ep = this.registry.byId.get(e.id);
      if (ep === undefined) continue;
      const dr = e.requests - prev.requests;
      if (dr !== 0) {
        table.requests[ep.slot] += dr;
        changed = true;
      }
      for (let k = 0; k < KINDS; k++) {
        const d = e.errors[k] - prev.errors[k];
        if (d !== 0) {
          table.errors[ep.slot * KINDS + k] += d;
          changed = true;
        }
      }
      ep.ejectedTimes += e.ejections - prev.ejections;
    }
    for (const s of m.services) {
      const prev = t.services.get(s.name) ?? { requests: 0, errors: new Array<number>(KINDS).fill(0) };
      t.services.set(s.name, s);
      const svc = this.registry.services.get(s.name);
      if (svc === undefined) continue;
      svc.requests += s.requests - prev.requests;
      for (let k = 0; k < KINDS; k++) svc.errors[k] += s.errors[k] - prev.errors[k];
      if (s.window !== '') {
        const h = decodeFromCompressedBase64(s.window);
        (svc.latency ??= newHistogram()).add(h);
        (svc.window ??= newHistogram()).add(h);
        changed = true;
      }
    }
    for (let k = 0; k < REFUSAL_KINDS.length; k++) {
      const d = m.refused[k] - t.refused[k];
      t.refused[k] = m.refused[k];
      for (let i = 0; i < d; i++) this.metrics.refused(REFUSAL_KINDS[k]);
    }
    this.#copyActive();
    if (changed) this.metrics.changed = true;
  }

  /** This thread's registry shows the shared counts (metrics read them from it). */
  #copyActive(): void {
    const table = this.registry.table;
    for (const [ep, slot] of this.#slotOf) table.active[ep.slot] = Atomics.load(this.#active, slot);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#statsTimer) clearInterval(this.#statsTimer);
      this.#statsTimer = null;
      this.feed?.close();
      await this.#starting?.catch(() => undefined);
      await this.#stopThreads(this.#o.closeGraceMs ?? CLOSE_GRACE_MS);
      this.#copyActive();
      await this.registry.close();
    })();
    return this.#closing;
  }

  /** Each thread finishes its in-flight requests (up to the grace), reports, and exits. */
  async #stopThreads(graceMs: number): Promise<void> {
    await Promise.all(
      this.#threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            const kill = setTimeout(() => void t.worker.terminate(), graceMs + 2_000);
            kill.unref();
            t.worker.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            t.worker.postMessage({ t: 'close', graceMs } satisfies ToThread);
          }),
      ),
    );
    this.#threads.length = 0;
  }
}

/** As metrics.ts' histograms (1 µs to 10 min, 3 digits), so they add up. */
function newHistogram(): ReturnType<typeof buildHistogram> {
  return buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: 600e6, numberOfSignificantValueDigits: 3 });
}

