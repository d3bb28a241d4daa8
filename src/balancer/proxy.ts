/**
 * The transport-neutral request lifecycle: check → route → pick → dispatch → (retry) → stream back → account.
 * Front ends hand each request over as a Downstream (downstream.ts); everything else is here, so the node:http
 * and uWebSockets.js front ends behave the same by construction.
 *
 * One Exchange per request is the only object the proxy allocates for it (a RequestBody too when it has a body): it
 * is at once the upstream pool's dispatch handler and the Downstream's sink, so no closure is created per request.
 */
import { STATUS_CODES } from 'node:http';
import { RequestBody } from './body.js';
import type { Downstream, DownstreamSink } from './downstream.js';
import type { Endpoint, EndpointRegistry, Service } from './endpoints.js';
import type { DispatchOptions, RequestControl, UpstreamHandler, UpstreamPool } from './http1/contract.js';
import { REQUEST_LIMIT_DEFAULTS, type RequestFacts, checkRequest, forwardHeaders, responseHeaders } from './headers.js';
import type { BalancerMetrics } from './metrics.js';
import { normaliseTarget } from './normalize-path.js';
import type { OutlierDetector } from './outlier.js';
import { pick, pickPanic } from './picker.js';
import { type Failure, type PoolOptions, classify, createPool } from './upstream.js';
import { type ErrorKind, ErrorKindIndex, type RefusalKind, type RequestLimits } from './types.js';

/** Methods RFC 9110 §9.2.2 calls idempotent: repeating them is safe, so a reset before the response is retried. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface ProxyOptions {
  limits: RequestLimits;
  pool: PoolOptions;
}

export class ClientAbortError extends Error {
  readonly code = 'BRL_CLIENT_ABORTED';
  constructor() {
    super('the client went away');
  }
}

/** A short text response (errors, refusals): status line reason, then why, then the kind in a header. */
export function sendError(down: Downstream, status: number, kind: ErrorKind | RefusalKind, reason: string): void {
  if (down.headersSent) {
    down.abort();
    return;
  }
  const body = Buffer.from(`${status} ${STATUS_CODES[status] ?? 'Error'}: ${reason}\n`, 'utf8');
  down.writeHead(status, [
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(body.length),
    'cache-control',
    'no-store',
    'x-borealis-error',
    kind,
  ]);
  down.write(body);
  down.end();
}

export class Proxy {
  readonly registry: EndpointRegistry;
  readonly outlier: OutlierDetector;
  readonly metrics: BalancerMetrics;
  readonly limits: RequestLimits;
  readonly poolOptions: PoolOptions;

  constructor(registry: EndpointRegistry, outlier: OutlierDetector, metrics: BalancerMetrics, opts: Partial<ProxyOptions> & { pool: PoolOptions }) {
    this.registry = registry;
    this.outlier = outlier;
    this.metrics = metrics;
    this.limits = { ...REQUEST_LIMIT_DEFAULTS, ...opts.limits };
    this.poolOptions = opts.pool;
  }

  /** Takes one client request to its end. Never throws. */
  handle(down: Downstream): void {
    const x = new Exchange(this, down);
    const refusal = checkRequest(down.method, down.target, down.rawHeaders, this.limits, x);
    if (refusal !== null) {
      this.metrics.refused(refusal.kind);
      // The framing of what follows cannot be trusted: this connection ends with the response.
      down.closeAfterResponse();
      sendError(down, refusal.status, refusal.kind, refusal.reason);
      return;
    }
    // Routed and forwarded in normal form, so the endpoint serves the path that was routed (normalize-path.ts).
    const target = normaliseTarget(down.target);
    const service = this.#routeNormal(x.host, target);
    if (service === null) {
      this.metrics.refused('no_route');
      if (x.hasBody) down.closeAfterResponse();
      sendError(down, 404, 'no_route', `no service routes ${x.host === undefined ? 'this request' : `host ${x.host}`} path ${pathOf(target)}`);
      return;
    }
    x.start(service, target);
  }

  /** The service for a Host value and request target (as received: it is normalised here), or null. */
  route(host: string | undefined, target: string): Service | null {
    return this.#routeNormal(host, normaliseTarget(target));
  }

  #routeNormal(host: string | undefined, target: string): Service | null {
    const name = this.registry.routes.match(host, pathOf(target));
    return name === null ? null : (this.registry.services.get(name) ?? null);
  }

  /**
   * A member to send to (or an ejected one when all are: panic routing), or null. `exclude` is the endpoint a retry
   * moves away from; a retry goes to an endpoint that has answered before when there is one (picker.ts).
   */
  pickEndpoint(service: Service, exclude = -1): Endpoint | null {
    const table = this.registry.table;
    let slot = pick(service, table, exclude);
    if (slot < 0 && service.ejected > 0) slot = pickPanic(service, table, exclude);
    return slot < 0 ? null : (this.registry.bySlot[slot] ?? null);
  }

  dispatcherOf(ep: Endpoint): UpstreamPool {
    return (ep.dispatcher ??= createPool(ep.host, ep.port, this.poolOptions));
  }

  /** Counts an attempt's end on its endpoint and frees the slot's claim. */
  release(ep: Endpoint): void {
    this.registry.released(ep, this.registry.table.release(ep.slot));
    this.metrics.changed = true;
  }

  /** A service had no endpoint for a request (503). */
  countServiceError(service: Service): void {
    service.errors[ErrorKindIndex.no_endpoint]++;
    this.metrics.changed = true;
  }

  countError(ep: Endpoint, kind: ErrorKind): void {
    this.registry.table.countError(ep.slot, ErrorKindIndex[kind]);
    ep.service.errors[ErrorKindIndex[kind]]++;
  }

  /** Passive health from a final response status (HTTP and WebSocket exchanges alike): 5xx is a failure. */
  recordStatus(ep: Endpoint, status: number): void {
    if (status >= 500) {
      this.countError(ep, 'status_5xx');
      // An answer all the same: whatever is wrong, the endpoint is not starting (outlier.ts).
      this.outlier.answered(ep.slot);
      this.outlier.failure(ep);
    } else {
      this.outlier.success(ep.slot);
    }
  }

  /**
   * Counts a failed exchange with an endpoint and, when the endpoint is to blame, feeds outlier detection: a refused
   * connection separately, since from an endpoint that has never answered it means "still starting" (outlier.ts).
   */
  recordFailure(ep: Endpoint, err: Error, connected: boolean): Failure {
    const f = classify(err, ep.address, connected);
    this.countError(ep, f.kind);
    if (f.kind === 'connect') this.outlier.refused(ep);
    else if (f.endpointFault) this.outlier.failure(ep);
    return f;
  }
}

export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/** One request through the proxy: the pool's handler for its attempts and the sink of its Downstream. */
class Exchange implements DownstreamSink, RequestFacts, UpstreamHandler, DispatchOptions {
  host: string | undefined = undefined;
  hasBody = false;
  readonly #proxy: Proxy;
  readonly #down: Downstream;
  #service: Service | null = null;
  /** The endpoint of the current attempt (null between attempts and after the end). */
  #ep: Endpoint | null = null;
  // DispatchOptions: the Exchange is its own request description (no options object per attempt).
  method = '';
  path = '';
  headers: string[] = [];
  body: RequestBody | null = null;
  #attempts = 0;
  #connected = false;
  #clientGone = false;
  #done = false;
  /** The attempt's connection, from onConnect until the attempt ends (it serves other requests afterwards). */
  #upstream: RequestControl | null = null;
  #startedAt = 0;

  constructor(proxy: Proxy, down: Downstream) {
    this.#proxy = proxy;
    this.#down = down;
  }

  /** `target`: the request's, normalised (what was routed). */
  start(service: Service, target: string): void {
    this.#service = service;
    this.#startedAt = performance.now();
    service.requests++;
    const down = this.#down;
    down.attach(this);
    this.method = down.method;
    this.path = target;
    forwardHeaders(down.rawHeaders, down.remoteAddress, down.scheme, this.headers);
    if (this.hasBody) this.body = new RequestBody(down);
    const ep = this.#proxy.pickEndpoint(service);
    if (ep === null) {
      this.#proxy.countServiceError(service);
      this.#fail(503, 'no_endpoint', `service ${service.name} has no endpoint to take this request`);
      return;
    }
    this.#send(ep);
  }

  #send(ep: Endpoint): void {
    const proxy = this.#proxy;
    this.#ep = ep;
    this.#attempts++;
    this.#connected = false;
    this.#upstream = null;
    proxy.registry.table.acquire(ep.slot);
    try {
      proxy.dispatcherOf(ep).dispatch(this, this);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  // ---- upstream handler --------------------------------------------------------------------------

  onConnect(upstream: RequestControl): void {
    this.#connected = true;
    this.#upstream = upstream;
    if (this.#clientGone) upstream.abort(new ClientAbortError());
  }

  onHeaders(status: number, raw: readonly string[]): boolean {
    // Interim 1xx responses never get here (the pool skips them; the front end answered Expect itself), nor a
    // 101: the pool refuses one to a request that did not ask to upgrade, as a malformed response.
    const ep = this.#ep!;
    this.#proxy.recordStatus(ep, status);
    const out: string[] = [];
    responseHeaders(raw, out);
    this.#down.writeHead(status, out);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.#down.write(chunk);
  }

  onComplete(): void {
    this.#upstream = null;
    // The endpoint answered before taking the whole body: the rest of it stays unread on the client's connection.
    if (this.body !== null && !this.body.ended) this.#down.closeAfterResponse();
    this.#down.end();
    this.#finish();
  }

  onError(err: Error): void {
    this.#upstream = null;
    const ep = this.#ep;
    if (ep === null || this.#done) return;
    const proxy = this.#proxy;
    if (this.#clientGone) {
      proxy.countError(ep, 'aborted');
      this.#finish();
      return;
    }
    const f = proxy.recordFailure(ep, err, this.#connected);
    if (this.#down.headersSent) {
      // Response bytes went out: no retry, no error status; cut the client off so it sees the truncation.
      this.#down.abort();
      this.#finish();
      return;
    }
    const retry =
      this.#attempts === 1 &&
      f.kind !== 'headers_timeout' &&
      f.kind !== 'body_timeout' &&
      (f.beforeRequest || !this.#connected || IDEMPOTENT.has(this.#down.method)) &&
      (this.body === null || this.body.received === 0);
    if (retry) {
      // An endpoint that has answered before when there is one: a new instance may not listen yet either.
      const next = proxy.pickEndpoint(ep.service, ep.slot);
      if (next !== null && next !== ep) {
        this.#ep = null;
        proxy.release(ep);
        this.#send(next);
        return;
      }
    }
    this.#fail(f.status, f.kind, f.reason);
  }

  // ---- downstream sink ---------------------------------------------------------------------------

  onBodyChunk(chunk: Uint8Array): void {
    this.body?.feed(chunk);
  }

  onBodyEnd(): void {
    this.body?.finish();
  }

  onDownstreamDrain(): void {
    this.#upstream?.resume();
  }

  onDownstreamAbort(): void {
    if (this.#done || this.#clientGone) return;
    this.#clientGone = true;
    // Before onConnect (waiting for a connection) there is nothing to cancel yet: onConnect aborts it then.
    this.#upstream?.abort(new ClientAbortError());
  }

  // ---- ends --------------------------------------------------------------------------------------

  /** An error response (or, if the status already went out, a cut connection). */
  #fail(status: number, kind: ErrorKind, reason: string): void {
    if (this.body !== null && !this.body.ended) this.#down.closeAfterResponse();
    sendError(this.#down, status, kind, reason);
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    const ep = this.#ep;
    this.#ep = null;
    if (ep !== null) this.#proxy.release(ep);
    const service = this.#service;
    if (service !== null) this.#proxy.metrics.observe(service, (performance.now() - this.#startedAt) * 1000);
  }
}
