/**
 * The balancer: a front end, the proxy core, the endpoint registry and a feed, tied together. `start()` and
 * `close()` are idempotent. Three ways to feed it:
 * - `{ master }`: in the master's process (`borealis up`), from its EventBus; stats events go on that bus and the
 *   Prometheus metrics on the master's registry (so its /metrics includes them);
 * - `{ remote: 'host:port' }`: from a master's /v1/events stream (`borealis balancer --master`);
 * - `{ static: [...] }`: a fixed endpoint list, no master (`borealis balancer --static`, benchmarks).
 */
import type { Registry } from 'prom-client';
import type { EventBus } from '../events/bus.js';
import { type EndpointSpec, EndpointRegistry } from './endpoints.js';
import { type Feed, MasterFeed, type MasterSource, RemoteFeed } from './feed.js';
import type { FrontEnd } from './downstream.js';
import { type FrontEndFactory, chooseFrontEnd } from './front-choice.js';
import type { NodeFrontOptions } from './front-node.js';
import type { UwsFrontOptions } from './front-uws.js';
import { BalancerMetrics } from './metrics.js';
import { ClusterModel } from './model.js';
import { OutlierDetector } from './outlier.js';
import { Proxy } from './proxy.js';
import type { BalancerLogger, BalancerStats, OutlierOptions, RequestLimits, UpstreamTimeouts } from './types.js';
import { POOL_DEFAULTS, TIMEOUT_DEFAULTS } from './upstream.js';
import { definedOnly } from '../util/defined-only.js';

/** The environment variable naming the balancer's listen address (`host:port`); a flag wins over it. */
export const BALANCER_LISTEN_ENV = 'BOREALIS_BALANCER_LISTEN';
export const DEFAULT_BALANCER_LISTEN = { host: '127.0.0.1', port: 8080 } as const;
/** The service name of a static endpoint list (any host, every path). */
export const STATIC_SERVICE = 'static';

export type FeedSource = { master: MasterSource & { metrics?: Registry } } | { remote: string } | { static: readonly EndpointSpec[] };

export type { FrontEndFactory } from './front-choice.js';
export { nodeFrontEnd } from './front-choice.js';

export interface BalancerOptions {
  feed: FeedSource;
  listen?: { host: string; port: number };
  /**
   * Which front end: `auto` (the default) runs on uWebSockets.js when its native binary loads, else node:http
   * ($BOREALIS_NATIVE=0 forces node:http); `uws` requires the native one; or a factory.
   */
  frontEnd?: FrontEndFactory | 'auto' | 'uws' | 'node';
  /** uWebSockets.js front end options (threads share the port). */
  uwsFront?: UwsFrontOptions;
  /** The environment the front end is chosen from (default process.env). */
  env?: NodeJS.ProcessEnv;
  timeouts?: Partial<UpstreamTimeouts>;
  outlier?: Partial<OutlierOptions>;
  limits?: Partial<RequestLimits>;
  front?: NodeFrontOptions;
  maxConnectionsPerEndpoint?: number;
  /** Stats interval; a `balancer_stats` snapshot goes out at most this often, and only when something changed. */
  statsIntervalMs?: number;
  /** Where stats snapshots go (default: the master's bus with a `master` feed, nowhere otherwise). */
  onStats?: (stats: BalancerStats) => void;
  /** Prometheus registry to add the balancer's metrics to (default: the master's with a `master` feed, else its own). */
  metricsRegistry?: Registry;
  logger?: BalancerLogger;
  /** Keep active counts in a SharedArrayBuffer (for several balancer threads). */
  sharedCounters?: boolean;
  /** In-flight requests get this long at close() before their connections are cut. */
  closeGraceMs?: number;
}

/** About once a second: live enough for a dashboard, cheap enough to be invisible on the bus. */
const STATS_INTERVAL_MS = 1_000;
const CLOSE_GRACE_MS = 5_000;

export class Balancer {
  readonly registry: EndpointRegistry;
  readonly metrics: BalancerMetrics;
  readonly outlier: OutlierDetector;
  readonly proxy: Proxy;
  readonly model: ClusterModel;
  readonly feed: Feed | null;
  readonly front: FrontEnd;
  /** Why this front end (for the start-up line), e.g. `BOREALIS_NATIVE=0`; null when given a factory. */
  readonly frontEndReason: string | null;
  #address: { host: string; port: number } | null = null;
  readonly #o: BalancerOptions;
  readonly #log: BalancerLogger | undefined;
  #starting: Promise<{ host: string; port: number }> | null = null;
  #closing: Promise<void> | null = null;
  #statsTimer: NodeJS.Timeout | null = null;
  readonly #onStats: ((s: BalancerStats) => void) | undefined;

  constructor(opts: BalancerOptions) {
    this.#o = opts;
    this.#log = opts.logger;
    const interval = opts.statsIntervalMs ?? STATS_INTERVAL_MS;
    if (!(interval > 0)) throw new TypeError(`statsIntervalMs must be > 0, got ${interval}`);
    const maxConns = opts.maxConnectionsPerEndpoint ?? POOL_DEFAULTS.maxConnections;
    if (!Number.isInteger(maxConns) || maxConns < 1) throw new TypeError(`maxConnectionsPerEndpoint must be an integer >= 1, got ${maxConns}`);
    const master = 'master' in opts.feed ? opts.feed.master : null;
    let metrics: BalancerMetrics | null = null;
    this.registry = new EndpointRegistry({
      shared: opts.sharedCounters ?? false,
      onChange: (c) => {
        if (metrics) metrics.changed = true;
        if (c.kind !== 'routes' && c.kind !== 'weight') this.#log?.info({ service: c.endpoint.service.name, endpoint: c.endpoint.id, address: c.endpoint.address }, `balancer endpoint ${c.kind}`);
      },
    });
    this.metrics = metrics = new BalancerMetrics(this.registry, opts.metricsRegistry ?? master?.metrics);
    this.outlier = new OutlierDetector(this.registry, opts.outlier ?? {}, (e) => {
      this.metrics.changed = true;
      if (e.kind === 'ejected') {
        this.#log?.warn({ service: e.endpoint.service.name, endpoint: e.endpoint.id, forMs: e.forMs, ejections: e.ejections }, 'balancer endpoint ejected');
      } else {
        this.#log?.info({ service: e.endpoint.service.name, endpoint: e.endpoint.id }, 'balancer endpoint returned');
      }
    });
    const timeouts = { ...TIMEOUT_DEFAULTS, ...definedOnly(opts.timeouts ?? {}) };
    this.proxy = new Proxy(this.registry, this.outlier, this.metrics, {
      limits: { ...definedOnly(opts.limits ?? {}) } as RequestLimits,
      pool: { timeouts, maxConnections: maxConns, keepAliveMs: POOL_DEFAULTS.keepAliveMs },
    });
    this.model = new ClusterModel(this.registry);
    if ('master' in opts.feed) this.feed = new MasterFeed(opts.feed.master, this.model);
    else if ('remote' in opts.feed) this.feed = new RemoteFeed(opts.feed.remote, this.model, opts.logger ? { logger: opts.logger } : {});
    else {
      this.feed = null;
      this.registry.setService(STATIC_SERVICE, {});
      for (const e of opts.feed.static) this.registry.upsert(STATIC_SERVICE, e);
    }
    const fe = opts.frontEnd ?? 'auto';
    if (typeof fe === 'function') {
      this.front = fe(this.proxy, opts.front ?? {});
      this.frontEndReason = null;
    } else {
      const choice = chooseFrontEnd(fe, opts.env ?? process.env, opts.uwsFront ?? {});
      this.front = choice.factory(this.proxy, opts.front ?? {});
      this.frontEndReason = choice.why;
    }
    const bus: EventBus | undefined = master?.events;
    this.#onStats = opts.onStats ?? (bus ? (s) => void bus.publish({ type: 'balancer_stats', data: s as unknown as Record<string, unknown> }) : undefined);
  }

  /** Where it listens, once started. */
  get address(): { host: string; port: number } | null {
    return this.#address;
  }

  get url(): string {
    const a = this.#address;
    if (!a) throw new Error('the balancer is not listening');
    return `http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  /** Listens and starts the feed; resolves with the address. Idempotent. */
  start(): Promise<{ host: string; port: number }> {
    this.#starting ??= (async () => {
      const want = this.#o.listen ?? DEFAULT_BALANCER_LISTEN;
      const address = await this.front.listen(want.host, want.port);
      this.#address = address;
      this.feed?.start();
      const interval = this.#o.statsIntervalMs ?? STATS_INTERVAL_MS;
      if (this.#onStats) {
        const name = `${address.host}:${address.port}`;
        const publish = this.#onStats;
        this.#statsTimer = setInterval(() => {
          const s = this.metrics.snapshot(name);
          if (s) publish(s);
        }, interval);
        this.#statsTimer.unref();
      }
      const why = this.frontEndReason === null ? '' : `; ${this.frontEndReason}`;
      this.#log?.info({ listen: `${address.host}:${address.port}`, transport: this.front.transport }, `balancer listening on ${address.host}:${address.port} (${this.front.transport}${why})`);
      return address;
    })();
    return this.#starting;
  }

  /** Stops the feed, the front end (in-flight requests get the grace period) and every endpoint pool. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#statsTimer) clearInterval(this.#statsTimer);
      this.#statsTimer = null;
      this.feed?.close();
      await this.#starting?.catch(() => undefined);
      await this.front.close(this.#o.closeGraceMs ?? CLOSE_GRACE_MS);
      await this.registry.close();
    })();
    return this.#closing;
  }
}

/**
 * `127.0.0.1:8001@1,127.0.0.1:8002@2` (weight after `@`, default 1) -> endpoint specs; throws a TypeError naming
 * the bad entry.
 */
export function parseStaticEndpoints(text: string): EndpointSpec[] {
  const out: EndpointSpec[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})(?:@(\d+(?:\.\d+)?))?$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    const weight = m?.[3] === undefined ? 1 : Number(m[3]);
    if (!m || port < 1 || port > 65535 || !(weight > 0)) {
      throw new TypeError(`static endpoint ${JSON.stringify(item)} must be host:port or host:port@weight (weight > 0)`);
    }
    const host = m[1].replace(/^\[|\]$/g, '');
    out.push({ id: `${m[1]}:${port}`, host, port, weight });
  }
  if (out.length === 0) throw new TypeError('the static endpoint list is empty');
  return out;
}
