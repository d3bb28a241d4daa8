/**
 * Endpoints and the services they belong to.
 *
 * Every endpoint owns a slot in EndpointTable: its live figures (active requests, weight, state, failure streak,
 * counters) are columns of typed arrays indexed by slot, so the picker compares numbers in flat arrays and the
 * request path updates counters without allocating. `active` can live in a SharedArrayBuffer (option `shared`),
 * updated with Atomics, so several balancer threads could later pick over the same live counts; the other columns
 * are written by one thread (the one applying the feed) and only read on the hot path.
 *
 * A service keeps `members`: the slots of its endpoints that may take new requests (state UP), rebuilt whenever
 * one joins, drains, is ejected, returns or leaves (rare), so a pick never checks a state.
 *
 * Within UP, an endpoint is *proven* once it has answered a request (any status) and *starting* until then: a task
 * becomes an endpoint when its process has started, which may be before it listens. The columns `proven`,
 * `heldUntil` and `joinedAt` let the picker keep traffic off a starting endpoint that refuses connections, and
 * outlier detection give it a grace period before ejecting it (outlier.ts explains both).
 */
import type { Histogram } from 'hdr-histogram-js';
import type { UpstreamPool } from './http1/contract.js';
import { RouteTable, type RouteSpec } from './routes.js';
import { ERROR_KINDS, type EndpointStateName } from './types.js';

export const SlotState = {
  FREE: 0,
  /** Takes new requests. */
  UP: 1,
  /** Being killed: in-flight requests finish, no new ones. */
  DRAINING: 2,
  /** Outlier detection took it out for a while. */
  EJECTED: 3,
  /** Gone from its service; the slot is freed once its last in-flight request ends. */
  REMOVED: 4,
} as const;
export type SlotStateValue = (typeof SlotState)[keyof typeof SlotState];

const KINDS = ERROR_KINDS.length;
/** 64 endpoints before the first growth: a small cluster never reallocates. */
const INITIAL_CAPACITY = 64;

export interface EndpointTableOptions {
  /** Keep `active` in a SharedArrayBuffer and update it with Atomics (several balancer threads). */
  shared?: boolean;
  capacity?: number;
}

export class EndpointTable {
  readonly shared: boolean;
  capacity = 0;
  active!: Int32Array;
  weight!: Float64Array;
  state!: Uint8Array;
  /** Consecutive failures (connect errors, resets, 5xx); reset by a success. */
  failures!: Uint32Array;
  /** Times ejected; decays while the endpoint behaves (outlier.ts). */
  ejections!: Uint32Array;
  /** Cumulative requests (attempts) sent. */
  requests!: Float64Array;
  /** The pick sequence number of each slot's last pick (the picker's tie-break: least recently picked wins). */
  lastPick!: Float64Array;
  /** Picks made so far (the sequence lastPick takes its numbers from). */
  picks = 0;
  /** Cumulative errors, KINDS per slot in ERROR_KINDS order. */
  errors!: Float64Array;
  /** 1 once the endpoint has answered a request (any status): it listens. Never goes back to 0. */
  proven!: Uint8Array;
  /**
   * Until when (ms since epoch) a starting endpoint that refused a connection is skipped by the picker while
   * other members can take the request; 0 when not held. Only ever set while `proven` is 0.
   */
  heldUntil!: Float64Array;
  /** When the endpoint joined (ms since epoch): the start of its startup grace (outlier.ts). */
  joinedAt!: Float64Array;
  readonly #free: number[] = [];
  #used = 0;

  constructor(opts: EndpointTableOptions = {}) {
    this.shared = opts.shared ?? false;
    this.#grow(opts.capacity ?? INITIAL_CAPACITY);
  }

  alloc(): number {
    const slot = this.#free.pop() ?? this.#used++;
    if (slot >= this.capacity) this.#grow(this.capacity * 2);
    this.active[slot] = 0;
    this.reset(slot);
    return slot;
  }

  /**
   * A fresh endpoint's columns in `slot`, all but `active` (a threaded balancer's worker shares that one and
   * leaves it to the main thread).
   */
  reset(slot: number): void {
    this.weight[slot] = 1;
    this.state[slot] = SlotState.UP;
    this.failures[slot] = 0;
    this.ejections[slot] = 0;
    this.requests[slot] = 0;
    this.lastPick[slot] = 0;
    this.errors.fill(0, slot * KINDS, slot * KINDS + KINDS);
    this.proven[slot] = 0;
    this.heldUntil[slot] = 0;
    this.joinedAt[slot] = Date.now();
  }

  free(slot: number): void {
    this.state[slot] = SlotState.FREE;
    this.#free.push(slot);
  }

  /** One more request (or WebSocket) in flight on this endpoint. */
  acquire(slot: number): void {
    if (this.shared) Atomics.add(this.active, slot, 1);
    else this.active[slot]++;
    this.requests[slot]++;
  }

  /** One fewer in flight; returns how many remain. */
  release(slot: number): number {
    if (this.shared) return Atomics.sub(this.active, slot, 1) - 1;
    return --this.active[slot];
  }

  countError(slot: number, kindIndex: number): void {
    this.errors[slot * KINDS + kindIndex]++;
  }

  #grow(capacity: number): void {
    const copy = <T extends Int32Array | Float64Array | Uint8Array | Uint32Array>(old: T | undefined, fresh: T): T => {
      if (old) fresh.set(old);
      return fresh;
    };
    const activeBuf = this.shared ? new SharedArrayBuffer(capacity * 4) : new ArrayBuffer(capacity * 4);
    this.active = copy(this.active as Int32Array | undefined, new Int32Array(activeBuf));
    this.weight = copy(this.weight as Float64Array | undefined, new Float64Array(capacity));
    this.state = copy(this.state as Uint8Array | undefined, new Uint8Array(capacity));
    this.failures = copy(this.failures as Uint32Array | undefined, new Uint32Array(capacity));
    this.ejections = copy(this.ejections as Uint32Array | undefined, new Uint32Array(capacity));
    this.requests = copy(this.requests as Float64Array | undefined, new Float64Array(capacity));
    this.lastPick = copy(this.lastPick as Float64Array | undefined, new Float64Array(capacity));
    this.errors = copy(this.errors as Float64Array | undefined, new Float64Array(capacity * KINDS));
    this.proven = copy(this.proven as Uint8Array | undefined, new Uint8Array(capacity));
    this.heldUntil = copy(this.heldUntil as Float64Array | undefined, new Float64Array(capacity));
    this.joinedAt = copy(this.joinedAt as Float64Array | undefined, new Float64Array(capacity));
    this.capacity = capacity;
  }
}

export class Endpoint {
  /** host:port */
  readonly address: string;
  /** The keep-alive pool, opened on first use. */
  dispatcher: UpstreamPool | null = null;
  /** When the current ejection ends (ms since epoch); 0 when not ejected. */
  ejectedUntil = 0;
  /** When it last returned from an ejection (outlier.ts decays the ejection count from there). */
  returnedAt = 0;
  ejectTimer: NodeJS.Timeout | null = null;
  /** Times ejected since it joined (never decays: the metric). */
  ejectedTimes = 0;

  constructor(
    readonly slot: number,
    readonly id: string,
    readonly service: Service,
    readonly host: string,
    readonly port: number,
  ) {
    const h = host.includes(':') ? `[${host}]` : host;
    this.address = `${h}:${port}`;
  }
}

export class Service {
  readonly endpoints = new Map<string, Endpoint>();
  /** Slots that take new requests; the first `size` entries are valid. */
  members: Int32Array = new Int32Array(4);
  size = 0;
  /** Endpoints currently ejected. */
  ejected = 0;
  /**
   * The latest `heldUntil` of its endpoints (ms since epoch), 0 when none is held: while it lies ahead the picker
   * checks members' `heldUntil`; the first pick after it passes sets it back to 0, so an ordinary pick reads no
   * clock.
   */
  heldUntil = 0;
  /** Cumulative requests routed here, and errors by kind (service-wide: no_endpoint lives only here). */
  requests = 0;
  readonly errors = new Float64Array(KINDS);
  /** Latency in µs: since start (Prometheus) and over the current stats interval (metrics.ts owns both). */
  latency: Histogram | null = null;
  window: Histogram | null = null;

  constructor(
    readonly name: string,
    public route: RouteSpec,
  ) {}

  /** Recomputes `members` from the endpoints' states. */
  rebuild(table: EndpointTable): void {
    if (this.members.length < this.endpoints.size) this.members = new Int32Array(Math.max(4, this.endpoints.size * 2));
    let n = 0;
    let ejected = 0;
    for (const ep of this.endpoints.values()) {
      const s = table.state[ep.slot];
      if (s === SlotState.UP) this.members[n++] = ep.slot;
      else if (s === SlotState.EJECTED) ejected++;
    }
    this.size = n;
    this.ejected = ejected;
  }

  /** Endpoints that count for the ejection share: all but the draining ones. */
  eligibleForEjection(table: EndpointTable): number {
    let n = 0;
    for (const ep of this.endpoints.values()) {
      const s = table.state[ep.slot];
      if (s === SlotState.UP || s === SlotState.EJECTED) n++;
    }
    return n;
  }
}

export interface EndpointSpec {
  /** Task id (fed by a master) or host:port (static). */
  id: string;
  host: string;
  port: number;
  weight: number;
}

export type RegistryChange =
  | { kind: 'added' | 'removed' | 'draining' | 'ejected' | 'returned' | 'weight'; endpoint: Endpoint }
  | { kind: 'routes' };

/**
 * The live set: services (with their routes) and their endpoints. The feed calls the mutators; the proxy reads
 * `routes`, `services` and `table`, and acquires/releases slots around each request.
 */
export class EndpointRegistry {
  readonly table: EndpointTable;
  readonly services = new Map<string, Service>();
  readonly byId = new Map<string, Endpoint>();
  /** Endpoints by slot (the picker returns slots). */
  bySlot: (Endpoint | undefined)[] = [];
  routes = new RouteTable([]);
  readonly #onChange: (c: RegistryChange) => void;
  /** Removed endpoints still finishing requests: their pools close when the last one ends. */
  readonly #leaving = new Set<Endpoint>();

  constructor(opts: EndpointTableOptions & { onChange?: (c: RegistryChange) => void } = {}) {
    this.table = new EndpointTable(opts);
    this.#onChange = opts.onChange ?? (() => undefined);
  }

  /** Creates or re-routes a service. */
  setService(name: string, route: Omit<RouteSpec, 'service'>): Service {
    const spec: RouteSpec = { service: name, ...route };
    let s = this.services.get(name);
    if (s) {
      if (sameRoute(s.route, spec)) return s;
      s.route = spec;
    } else {
      s = new Service(name, spec);
      this.services.set(name, s);
    }
    this.#rebuildRoutes();
    return s;
  }

  /** Removes a service and every endpoint of it (in-flight requests finish). */
  removeService(name: string): void {
    const s = this.services.get(name);
    if (!s) return;
    for (const id of [...s.endpoints.keys()]) this.remove(id);
    this.services.delete(name);
    this.#rebuildRoutes();
  }

  /**
   * Adds an endpoint to a service, or updates its weight. An endpoint that is draining stays draining (a task being
   * killed never comes back); one whose address changed is replaced.
   */
  upsert(serviceName: string, spec: EndpointSpec): Endpoint | null {
    const s = this.services.get(serviceName);
    if (!s) return null;
    const weight = spec.weight > 0 && Number.isFinite(spec.weight) ? spec.weight : 1;
    const old = this.byId.get(spec.id);
    if (old && (old.service !== s || old.host !== spec.host || old.port !== spec.port)) this.remove(spec.id);
    const existing = this.byId.get(spec.id);
    if (existing) {
      if (this.table.weight[existing.slot] !== weight) {
        this.table.weight[existing.slot] = weight;
        this.#onChange({ kind: 'weight', endpoint: existing });
      }
      return existing;
    }
    const slot = this.table.alloc();
    const ep = new Endpoint(slot, spec.id, s, spec.host, spec.port);
    this.table.weight[slot] = weight;
    this.bySlot[slot] = ep;
    this.byId.set(spec.id, ep);
    s.endpoints.set(spec.id, ep);
    s.rebuild(this.table);
    this.#onChange({ kind: 'added', endpoint: ep });
    return ep;
  }

  /** No new requests; in-flight ones finish. */
  drain(id: string): void {
    const ep = this.byId.get(id);
    if (!ep || this.table.state[ep.slot] === SlotState.DRAINING) return;
    this.#clearEjection(ep);
    this.table.state[ep.slot] = SlotState.DRAINING;
    ep.service.rebuild(this.table);
    this.#onChange({ kind: 'draining', endpoint: ep });
  }

  /** Out of its service at once; its pool closes (gracefully) and its slot is freed when nothing is in flight. */
  remove(id: string): void {
    const ep = this.byId.get(id);
    if (!ep) return;
    this.#clearEjection(ep);
    this.byId.delete(id);
    ep.service.endpoints.delete(id);
    this.table.state[ep.slot] = SlotState.REMOVED;
    ep.service.rebuild(this.table);
    this.#onChange({ kind: 'removed', endpoint: ep });
    if (this.table.active[ep.slot] === 0) this.#retire(ep);
    else this.#leaving.add(ep);
  }

  /** Takes an endpoint out of rotation until `until` (outlier.ts decides when and for how long). */
  eject(ep: Endpoint, until: number, onReturn: (ep: Endpoint) => void): void {
    if (this.table.state[ep.slot] !== SlotState.UP) return;
    this.table.state[ep.slot] = SlotState.EJECTED;
    ep.ejectedUntil = until;
    ep.service.rebuild(this.table);
    ep.ejectTimer = setTimeout(() => onReturn(ep), Math.max(0, until - Date.now()));
    ep.ejectTimer.unref();
    this.#onChange({ kind: 'ejected', endpoint: ep });
  }

  /** Back in rotation after an ejection. */
  readmit(ep: Endpoint): void {
    if (this.table.state[ep.slot] !== SlotState.EJECTED) return;
    this.#clearEjection(ep);
    this.table.state[ep.slot] = SlotState.UP;
    this.table.failures[ep.slot] = 0;
    ep.returnedAt = Date.now();
    ep.service.rebuild(this.table);
    this.#onChange({ kind: 'returned', endpoint: ep });
  }

  /** After a request on `ep` ends: a removed endpoint whose last request this was is retired. */
  released(ep: Endpoint, remaining: number): void {
    if (remaining === 0 && this.table.state[ep.slot] === SlotState.REMOVED && this.#leaving.delete(ep)) this.#retire(ep);
  }

  stateOf(ep: Endpoint): EndpointStateName {
    const s = this.table.state[ep.slot];
    if (s === SlotState.DRAINING) return 'draining';
    if (s === SlotState.EJECTED) return 'ejected';
    return this.table.proven[ep.slot] === 0 ? 'starting' : 'up';
  }

  /** Destroys every pool (in-flight requests fail); for shutdown. */
  async close(): Promise<void> {
    const all = [...this.byId.values(), ...this.#leaving];
    for (const ep of all) this.#clearEjection(ep);
    await Promise.all(all.map((ep) => ep.dispatcher?.destroy().catch(() => undefined)));
  }

  #retire(ep: Endpoint): void {
    const d = ep.dispatcher;
    ep.dispatcher = null;
    if (d) void d.close().catch(() => undefined);
    this.bySlot[ep.slot] = undefined;
    this.table.free(ep.slot);
  }

  #clearEjection(ep: Endpoint): void {
    if (ep.ejectTimer) clearTimeout(ep.ejectTimer);
    ep.ejectTimer = null;
    ep.ejectedUntil = 0;
  }

  #rebuildRoutes(): void {
    this.routes = new RouteTable([...this.services.values()].map((s) => s.route));
    this.#onChange({ kind: 'routes' });
  }
}

function sameRoute(a: RouteSpec, b: RouteSpec): boolean {
  return (a.pathPrefix ?? '/') === (b.pathPrefix ?? '/') && JSON.stringify(a.hosts ?? []) === JSON.stringify(b.hosts ?? []);
}
