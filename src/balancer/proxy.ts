/**
 * The transport-neutral request lifecycle: check → route → pick → dispatch → (retry) → stream back → account.
 * Front ends hand each request over as a Downstream (downstream.ts); everything else is here, so the node:http
 * and uWebSockets.js front ends behave the same by construction.
 *
 * One Exchange per request is the only object the proxy allocates for it (besides undici's own): it is at once the
 * undici dispatch handler and the Downstream's sink, so no closure is created per request.
 */
import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import { BodyReadable } from './body.js';
import type { Downstream, DownstreamSink } from './downstream.js';
import type { Endpoint, EndpointRegistry, Service } from './endpoints.js';
import { REQUEST_LIMIT_DEFAULTS, type RequestFacts, checkRequest, forwardHeaders, responseHeaders } from './headers.js';
import type { BalancerMetrics } from './metrics.js';
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
    const service = this.route(x.host, down.target);
    if (service === null) {
      this.metrics.refused('no_route');
      if (x.hasBody) down.closeAfterResponse();
      sendError(down, 404, 'no_route', `no service routes ${x.host === undefined ? 'this request' : `host ${x.host}`} path ${pathOf(down.target)}`);
      return;
    }
    x.start(service);
  }

  /** The service for a Host value and request target, or null. */
  route(host: string | undefined, target: string): Service | null {
    const name = this.registry.routes.match(host, pathOf(target));
    return name === null ? null : (this.registry.services.get(name) ?? null);
  }

  /** A member to send to (or an ejected one when all are: panic routing), or null. */
  pickEndpoint(service: Service, exclude = -1): Endpoint | null {
    const table = this.registry.table;
    let slot = pick(service, table, exclude);
    if (slot < 0 && service.ejected > 0) slot = pickPanic(service, table, exclude);
    return slot < 0 ? null : (this.registry.bySlot[slot] ?? null);
  }

  dispatcherOf(ep: Endpoint): Dispatcher {
    return (ep.dispatcher ??= createPool(ep.origin, this.poolOptions));
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
      this.outlier.failure(ep);
    } else {
      this.outlier.success(ep.slot);
    }
  }

  /** Counts a failed exchange with an endpoint and, when the endpoint is to blame, feeds outlier detection. */
  recordFailure(ep: Endpoint, err: Error, connected: boolean): Failure {
    const f = classify(err, ep.address, connected);
    this.countError(ep, f.kind);
    if (f.endpointFault) this.outlier.failure(ep);
    return f;
  }
}

export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/** One request through the proxy: the undici handler for its attempts and the sink of its Downstream. */
class Exchange implements DownstreamSink, RequestFacts {
  host: string | undefined = undefined;
  hasBody = false;
  readonly #proxy: Proxy;
  readonly #down: Downstream;
  #service: Service | null = null;
  /** The endpoint of the current attempt (null between attempts and after the end). */
  #ep: Endpoint | null = null;
  #headers: string[] = [];
  #body: BodyReadable | null = null;
  #bodyEnded = false;
  #attempts = 0;
  #connected = false;
  #clientGone = false;
  #done = false;
  #abortUpstream: ((err: Error) => void) | null = null;
  #resumeUpstream: (() => void) | null = null;
  #startedAt = 0;

  constructor(proxy: Proxy, down: Downstream) {
    this.#proxy = proxy;
    this.#down = down;
  }

  start(service: Service): void {
    this.#service = service;
    this.#startedAt = performance.now();
    service.requests++;
    const down = this.#down;
    down.attach(this);
    forwardHeaders(down.rawHeaders, down.remoteAddress, down.scheme, this.#headers);
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
    this.#abortUpstream = null;
    this.#resumeUpstream = null;
    proxy.registry.table.acquire(ep.slot);
    if (this.hasBody) {
      this.#body = new BodyReadable(this.#down);
      if (this.#bodyEnded) this.#body.finish();
    }
    try {
      proxy.dispatcherOf(ep).dispatch(
        { method: this.#down.method, path: this.#down.target, headers: this.#headers, body: this.#body, idempotent: false },
        this,
      );
    } catch (err) {
      this.onError(err as Error);
    }
  }

  // ---- undici handler ----------------------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    this.#connected = true;
    this.#abortUpstream = abort;
    if (this.#clientGone) abort(new ClientAbortError());
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    // 1xx (100 Continue, 103 Early Hints) are interim: the front end already answered Expect itself.
    if (status < 200) return true;
    const ep = this.#ep!;
    this.#resumeUpstream = resume;
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
    this.#down.end();
    this.#finish();
  }

  onUpgrade(): void {
    // Only WebSocket exchanges (websocket.ts) ask for upgrades; a 101 here is a broken endpoint.
    this.onError(Object.assign(new Error('unexpected upgrade'), { code: 'UND_ERR_INFO' }));
  }

  onError(err: Error): void {
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
      (this.#body === null || this.#body.received === 0);
    if (retry) {
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
    this.#body?.feed(chunk);
  }

  onBodyEnd(): void {
    this.#bodyEnded = true;
    this.#body?.finish();
  }

  onDownstreamDrain(): void {
    const resume = this.#resumeUpstream;
    if (resume !== null) resume();
  }

  onDownstreamAbort(): void {
    if (this.#done || this.#clientGone) return;
    this.#clientGone = true;
    // Before onConnect (queued for a connection) undici gives no way to cancel: onConnect aborts it then.
    if (this.#abortUpstream !== null) this.#abortUpstream(new ClientAbortError());
  }

  // ---- ends --------------------------------------------------------------------------------------

  /** An error response (or, if the status already went out, a cut connection). */
  #fail(status: number, kind: ErrorKind, reason: string): void {
    if (this.hasBody && !this.#bodyEnded) this.#down.closeAfterResponse();
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
