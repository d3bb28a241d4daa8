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
 *
 * Starting endpoints. A task without a health check becomes an endpoint once its process runs, which can be
 * before it listens; refused connections then say "not yet", not "broken". So an endpoint that has never answered
 * (endpoints.ts: not `proven`) and refuses a connection is treated as starting:
 * - it is held for REFUSED_HOLD_MS: the picker skips it while another member can take the request (picker.ts), and
 *   the refused attempt is retried on a proven endpoint when the request allows a retry (proxy.ts);
 * - its refusals count in its failure streak but do not eject it within STARTUP_GRACE_MS of its joining; past
 *   that, an endpoint still refusing is ejected by the usual rule (a task that never listens is broken).
 * Any answer (even a 5xx) proves it: the hold ends and its failures count as everyone's from then on. Failures
 * after a connection was made (resets, timeouts, 5xx) never get the grace: something listens there.
 * HAProxy's `slowstart` and Envoy's slow start window also treat a new server specially for a bounded window after
 * it joins, by ramping its weight; picker.ts says why holding fits a server that refuses better than a ramp.
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

/**
 * How long after joining a starting endpoint may refuse connections without being ejected: long enough for a
 * typical service process (a Node or Go binary, a small JVM app) to bind its port after exec, and well under
 * baseEjectionMs, so a task that never listens is still taken out about as soon as a failing one would be. (Envoy
 * and HAProxy leave their slow start windows to configuration; a few seconds is the low end of what is used.)
 */
export const STARTUP_GRACE_MS = 5_000;

/**
 * How long a starting endpoint that refused is skipped. Each probe after it costs one refused connect (well under
 * a millisecond on a LAN) and a retry elsewhere, so 200 ms keeps that to ~5 a second per endpoint while the
 * endpoint gets its first request at most ~200 ms after it starts listening.
 */
export const REFUSED_HOLD_MS = 200;

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

  /** A request (or WebSocket) on `slot` got a good answer: the streak ends, and the endpoint is proven. */
  success(slot: number): void {
    const table = this.#registry.table;
    if (table.failures[slot] !== 0) table.failures[slot] = 0;
    this.answered(slot);
  }

  /** The endpoint answered (any status): it listens, so it is no longer starting. Cheap once proven. */
  answered(slot: number): void {
    const table = this.#registry.table;
    if (table.proven[slot] === 1) return;
    table.proven[slot] = 1;
    table.heldUntil[slot] = 0;
  }

  /**
   * A connection to `ep` could not be made (refused, unreachable). A proven endpoint fails as usual; a starting one
   * is held, and ejected only once past its startup grace (see the file comment).
   */
  refused(ep: Endpoint): void {
    const table = this.#registry.table;
    const slot = ep.slot;
    if (table.proven[slot] === 1) {
      this.failure(ep);
      return;
    }
    const now = Date.now();
    const until = now + REFUSED_HOLD_MS;
    table.heldUntil[slot] = until;
    if (ep.service.heldUntil < until) ep.service.heldUntil = until;
    if (now - table.joinedAt[slot] < STARTUP_GRACE_MS) {
      table.failures[slot]++;
      return;
    }
    this.failure(ep);
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

