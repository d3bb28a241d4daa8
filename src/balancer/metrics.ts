/**
 * The balancer's figures, read from where the request path already keeps them (the endpoint table's columns and
 * each service's counters and HDR histograms), so nothing is labelled or hashed per request:
 * - Prometheus text on a prom-client registry (its own, or the master's when embedded, so the master's /metrics
 *   includes it), computed at scrape time;
 * - a BalancerStats snapshot (the `balancer_stats` event's data) per interval, or null when nothing changed.
 */
import { build as buildHistogram, type Histogram } from 'hdr-histogram-js';
import { Counter, Gauge, Registry } from 'prom-client';
import type { EndpointRegistry, Service } from './endpoints.js';
import {
  type BalancerStats,
  ERROR_KINDS,
  type EndpointStats,
  type ErrorKind,
  REFUSAL_KINDS,
  type RefusalKind,
  type ServiceStats,
} from './types.js';

/** 1 µs to 10 min at 3 significant digits: any request a proxy can see. */
const LATENCY_MAX_US = 600e6;
const QUANTILES = [0.5, 0.9, 0.99, 0.999];
const KINDS = ERROR_KINDS.length;

function newHistogram(): Histogram {
  return buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_MAX_US, numberOfSignificantValueDigits: 3 });
}

export class BalancerMetrics {
  readonly registry: Registry;
  /** Set by anything that changes a figure; cleared by snapshot(). */
  changed = true;
  readonly #endpoints: EndpointRegistry;
  readonly #refused = new Float64Array(REFUSAL_KINDS.length);
  // Per-interval baselines: endpoint id -> [requests, ...errors]; service -> [requests, ...errors].
  #lastEp = new Map<string, Float64Array>();
  #lastSvc = new Map<string, Float64Array>();
  readonly #lastRefused = new Float64Array(REFUSAL_KINDS.length);
  #lastAt = Date.now();

  constructor(endpoints: EndpointRegistry, registry?: Registry) {
    this.#endpoints = endpoints;
    this.registry = registry ?? new Registry();
    const registers = [this.registry];
    const self = this;
    const table = (): EndpointRegistry['table'] => endpoints.table;
    const eachEndpoint = function* () {
      for (const s of endpoints.services.values()) for (const ep of s.endpoints.values()) yield ep;
    };
    new Counter({
      name: 'borealis_balancer_requests_total',
      help: 'Requests sent to each endpoint (attempts: a retried request counts on both endpoints)',
      labelNames: ['service', 'endpoint'],
      registers,
      collect() {
        this.reset();
        for (const ep of eachEndpoint()) this.inc({ service: ep.service.name, endpoint: ep.id }, table().requests[ep.slot]);
      },
    });
    new Gauge({
      name: 'borealis_balancer_active',
      help: 'Requests and WebSockets in flight on each endpoint',
      labelNames: ['service', 'endpoint'],
      registers,
      collect() {
        this.reset();
        for (const ep of eachEndpoint()) this.set({ service: ep.service.name, endpoint: ep.id }, table().active[ep.slot]);
      },
    });
    new Gauge({
      name: 'borealis_balancer_endpoint_weight',
      help: 'Weight of each endpoint in weighted least-connections',
      labelNames: ['service', 'endpoint'],
      registers,
      collect() {
        this.reset();
        for (const ep of eachEndpoint()) this.set({ service: ep.service.name, endpoint: ep.id }, table().weight[ep.slot]);
      },
    });
    new Gauge({
      name: 'borealis_balancer_endpoint_state',
      help: 'Each endpoint\'s state (1 for the state it is in)',
      labelNames: ['service', 'endpoint', 'state'],
      registers,
      collect() {
        this.reset();
        for (const ep of eachEndpoint()) this.set({ service: ep.service.name, endpoint: ep.id, state: endpoints.stateOf(ep) }, 1);
      },
    });
    new Counter({
      name: 'borealis_balancer_errors_total',
      help: 'Failed requests by endpoint and kind (no_endpoint is per service, with endpoint="")',
      labelNames: ['service', 'endpoint', 'kind'],
      registers,
      collect() {
        this.reset();
        const t = table();
        for (const ep of eachEndpoint()) {
          for (let k = 0; k < KINDS; k++) {
            const v = t.errors[ep.slot * KINDS + k];
            if (v > 0) this.inc({ service: ep.service.name, endpoint: ep.id, kind: ERROR_KINDS[k] }, v);
          }
        }
        for (const s of endpoints.services.values()) {
          const v = s.errors[ERROR_KINDS.indexOf('no_endpoint')];
          if (v > 0) this.inc({ service: s.name, endpoint: '', kind: 'no_endpoint' }, v);
        }
      },
    });
    new Counter({
      name: 'borealis_balancer_ejections_total',
      help: 'Outlier ejections of each endpoint',
      labelNames: ['service', 'endpoint'],
      registers,
      collect() {
        this.reset();
        for (const ep of eachEndpoint()) this.inc({ service: ep.service.name, endpoint: ep.id }, ep.ejectedTimes);
      },
    });
    new Counter({
      name: 'borealis_balancer_service_requests_total',
      help: 'Requests routed to each service',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const s of endpoints.services.values()) this.inc({ service: s.name }, s.requests);
      },
    });
    new Gauge({
      name: 'borealis_balancer_latency_seconds',
      help: 'Request latency through the balancer per service since start (HDR histogram quantiles)',
      labelNames: ['service', 'quantile'],
      registers,
      collect() {
        this.reset();
        for (const s of endpoints.services.values()) {
          const h = s.latency;
          if (h === null || h.totalCount === 0) continue;
          for (const q of QUANTILES) this.set({ service: s.name, quantile: String(q) }, h.getValueAtPercentile(q * 100) / 1e6);
        }
      },
    });
    new Counter({
      name: 'borealis_balancer_refused_total',
      help: 'Requests refused before routing (bad_request, headers_too_large, unsupported_coding, no_route)',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (let k = 0; k < REFUSAL_KINDS.length; k++) if (self.#refused[k] > 0) this.inc({ reason: REFUSAL_KINDS[k] }, self.#refused[k]);
      },
    });
  }

  /** One request's latency (µs) on its service. */
  observe(service: Service, micros: number): void {
    const v = micros < 1 ? 1 : micros > LATENCY_MAX_US ? LATENCY_MAX_US : micros;
    (service.latency ??= newHistogram()).recordValue(v);
    (service.window ??= newHistogram()).recordValue(v);
    this.changed = true;
  }

  refused(kind: RefusalKind): void {
    this.#refused[REFUSAL_KINDS.indexOf(kind)]++;
    this.changed = true;
  }

  /** The figures since the last snapshot, or null when nothing changed. Resets the interval. */
  snapshot(balancer: string, now = Date.now()): BalancerStats | null {
    if (!this.changed) return null;
    this.changed = false;
    const intervalMs = Math.max(1, now - this.#lastAt);
    this.#lastAt = now;
    const perSecond = 1000 / intervalMs;
    const table = this.#endpoints.table;
    const nextEp = new Map<string, Float64Array>();
    const nextSvc = new Map<string, Float64Array>();
    const services: ServiceStats[] = [];
    for (const s of this.#endpoints.services.values()) {
      const endpoints: EndpointStats[] = [];
      let active = 0;
      for (const ep of s.endpoints.values()) {
        const cur = new Float64Array(1 + KINDS);
        cur[0] = table.requests[ep.slot];
        cur.set(table.errors.subarray(ep.slot * KINDS, ep.slot * KINDS + KINDS), 1);
        const prev = this.#lastEp.get(ep.id);
        nextEp.set(ep.id, cur);
        const requests = cur[0] - (prev?.[0] ?? 0);
        active += table.active[ep.slot];
        endpoints.push({
          id: ep.id,
          address: ep.address,
          state: this.#endpoints.stateOf(ep),
          weight: table.weight[ep.slot],
          active: table.active[ep.slot],
          requests,
          rps: round(requests * perSecond),
          errors: errorDelta(cur, prev),
          ejections: ep.ejectedTimes,
        });
      }
      const cur = new Float64Array(1 + KINDS);
      cur[0] = s.requests;
      cur.set(s.errors, 1);
      const prev = this.#lastSvc.get(s.name);
      nextSvc.set(s.name, cur);
      const requests = cur[0] - (prev?.[0] ?? 0);
      const w = s.window;
      services.push({
        name: s.name,
        requests,
        rps: round(requests * perSecond),
        active,
        errors: errorDelta(cur, prev),
        p50Ms: w && w.totalCount > 0 ? round(w.getValueAtPercentile(50) / 1000) : 0,
        p99Ms: w && w.totalCount > 0 ? round(w.getValueAtPercentile(99) / 1000) : 0,
        endpoints,
      });
      w?.reset();
    }
    this.#lastEp = nextEp;
    this.#lastSvc = nextSvc;
    const refused: Partial<Record<RefusalKind, number>> = {};
    for (let k = 0; k < REFUSAL_KINDS.length; k++) {
      const d = this.#refused[k] - this.#lastRefused[k];
      if (d > 0) refused[REFUSAL_KINDS[k]] = d;
      this.#lastRefused[k] = this.#refused[k];
    }
    return { balancer, intervalMs, services, refused };
  }
}

function errorDelta(cur: Float64Array, prev: Float64Array | undefined): Partial<Record<ErrorKind, number>> {
  const out: Partial<Record<ErrorKind, number>> = {};
  for (let k = 0; k < KINDS; k++) {
    const d = cur[1 + k] - (prev?.[1 + k] ?? 0);
    if (d > 0) out[ERROR_KINDS[k]] = d;
  }
  return out;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
