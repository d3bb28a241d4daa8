/**
 * Passive health checking (Envoy's consecutive-5xx outlier detection): an endpoint that fails
 * `consecutiveFailures` times in a row (connect errors, resets before a response, 5xx answers) is ejected from its
 * service for baseEjectionMs × n, where n counts its ejections — so an endpoint that keeps failing is tried less
 * and less often — capped at maxEjectionMs. n decays by one per baseEjectionMs the endpoint spends back in
 * rotation, so a blip long ago does not lengthen today's ejection.
 *
 * At most maxEjectionPercent of a service's endpoints are ejected at once, but always at least one (as Envoy): a
 * service-wide failure (a bad deploy, a dependency down) must not empty the service through ejections, which
 * would only turn errors into 503s and hide which endpoints are actually at fault.
 */
import type { Endpoint, EndpointRegistry } from './endpoints.js';
import { SlotState } from './endpoints.js';
import type { OutlierOptions } from './types.js';
import { definedOnly } from '../util/defined-only.js';

export const OUTLIER_DEFAULTS: Readonly<OutlierOptions> = {
  // Envoy's default: five in a row is past noise on a busy endpoint, and quick on a dead one.
  consecutiveFailures: 5,
  // Shorter than Envoy's 30 s: the master replaces a dead task within seconds, so a long first ejection mostly
  // punishes endpoints that had a transient problem.
  baseEjectionMs: 10_000,
  // Envoy's default maximum.
  maxEjectionMs: 300_000,
  // Envoy's default share.
  maxEjectionPercent: 10,
};

export type OutlierEvent = { kind: 'ejected'; endpoint: Endpoint; forMs: number; ejections: number } | { kind: 'returned'; endpoint: Endpoint };

export class OutlierDetector {
  readonly #registry: EndpointRegistry;
  readonly #o: OutlierOptions;
  readonly #onEvent: (e: OutlierEvent) => void;
  readonly #readmit = (ep: Endpoint): void => {
    this.#registry.readmit(ep);
    this.#onEvent({ kind: 'returned', endpoint: ep });
  };
  /** Ejections refused because the service was at its ejection share. */
  skipped = 0;

  constructor(registry: EndpointRegistry, opts: Partial<OutlierOptions>, onEvent: (e: OutlierEvent) => void = () => undefined) {
    const o = { ...OUTLIER_DEFAULTS, ...definedOnly(opts) };
    if (!Number.isInteger(o.consecutiveFailures) || o.consecutiveFailures < 1) throw new TypeError(`consecutiveFailures must be an integer >= 1, got ${o.consecutiveFailures}`);
    for (const k of ['baseEjectionMs', 'maxEjectionMs'] as const) {
      if (!Number.isFinite(o[k]) || o[k] <= 0) throw new TypeError(`${k} must be > 0, got ${o[k]}`);
    }
    if (!Number.isFinite(o.maxEjectionPercent) || o.maxEjectionPercent < 0 || o.maxEjectionPercent > 100) {
      throw new TypeError(`maxEjectionPercent must be in 0..100, got ${o.maxEjectionPercent}`);
    }
    this.#registry = registry;
    this.#o = o;
    this.#onEvent = onEvent;
  }

  get options(): Readonly<OutlierOptions> {
    return this.#o;
  }

  success(slot: number): void {
    const f = this.#registry.table.failures;
    if (f[slot] !== 0) f[slot] = 0;
  }

  failure(ep: Endpoint): void {
    const table = this.#registry.table;
    if (++table.failures[ep.slot] < this.#o.consecutiveFailures) return;
    if (table.state[ep.slot] !== SlotState.UP) return;
    const service = ep.service;
    const allowed = Math.max(1, Math.floor((service.eligibleForEjection(table) * this.#o.maxEjectionPercent) / 100));
    if (service.ejected >= allowed) {
      this.skipped++;
      return;
    }
    const now = Date.now();
    let n = table.ejections[ep.slot];
    if (ep.returnedAt > 0) n = Math.max(0, n - Math.floor((now - ep.returnedAt) / this.#o.baseEjectionMs));
    n++;
    table.ejections[ep.slot] = n;
    table.failures[ep.slot] = 0;
    ep.ejectedTimes++;
    const forMs = Math.min(this.#o.baseEjectionMs * n, this.#o.maxEjectionMs);
    this.#registry.eject(ep, now + forMs, this.#readmit);
    this.#onEvent({ kind: 'ejected', endpoint: ep, forMs, ejections: n });
  }
}

