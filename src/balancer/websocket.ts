/**
 * Upgrade requests (WebSocket): routed and picked like any request, sent through the endpoint's pool with
 * `upgrade` (on a connection of its own); on the endpoint's 101 the client's connection and the endpoint's socket
 * are spliced byte for byte until either side closes. The endpoint stays "active" (in least-connections and the
 * metrics) for the whole life of the connection: a WebSocket is load, however long it lasts. A refusal from the
 * endpoint (any non-101 answer) is forwarded as a normal response, after which the client's connection closes.
 */
import type { Duplex } from 'node:stream';
import type { Downstream, DownstreamSink } from './downstream.js';
import type { Endpoint } from './endpoints.js';
import { type RequestFacts, checkRequest, forwardHeaders, responseHeaders } from './headers.js';
import type { DispatchOptions, RequestControl, UpstreamHandler } from './http1/contract.js';
import { ClientAbortError, type Proxy, sendError } from './proxy.js';
import { normaliseTarget } from './normalize-path.js';

/** A Downstream on a connection that asked to upgrade; the response methods write raw HTTP/1.1 on it. */
export interface UpgradeDownstream extends Downstream {
  /**
   * The endpoint switched protocols: send the client this status and headers, then pass bytes both ways between
   * the client and `upstream` until either closes; call `onClosed` once when both are closed.
   */
  splice(status: number, headers: readonly string[], upstream: Duplex, onClosed: () => void): void;
}

/** Takes one upgrade request to its end (a spliced connection, or a response). Never throws. */
export function proxyUpgrade(proxy: Proxy, down: UpgradeDownstream): void {
  const x = new UpgradeExchange(proxy, down);
  const ep = admitUpgrade(proxy, down, x, (status, kind, reason) => sendError(down, status, kind, reason));
  if (ep !== null) x.start(ep, upgradeProtocol(down.rawHeaders)!);
}

/**
 * What every upgrade goes through before an endpoint sees it (here and in the uWS bridge, ws-bridge.ts): the
 * request checks, GET without a body with an Upgrade header, routing, and the pick. Returns the endpoint, or
 * null after `refuse` was given the answer (and the refusal was counted).
 */
export function admitUpgrade(
  proxy: Proxy,
  down: Downstream,
  facts: RequestFacts,
  refuse: (status: number, kind: Parameters<typeof sendError>[2], reason: string) => void,
): Endpoint | null {
  const refusal = checkRequest(down.method, down.target, down.rawHeaders, proxy.limits, facts);
  if (refusal !== null) {
    proxy.metrics.refused(refusal.kind);
    refuse(refusal.status, refusal.kind, refusal.reason);
    return null;
  }
  if (upgradeProtocol(down.rawHeaders) === undefined || down.method !== 'GET' || facts.hasBody) {
    proxy.metrics.refused('bad_request');
    refuse(400, 'bad_request', 'an upgrade must be a GET without a body, with an Upgrade header');
    return null;
  }
  const service = proxy.route(facts.host, down.target);
  if (service === null) {
    proxy.metrics.refused('no_route');
    refuse(404, 'no_route', `no service routes ${facts.host === undefined ? 'this request' : `host ${facts.host}`}`);
    return null;
  }
  service.requests++;
  const ep = proxy.pickEndpoint(service);
  if (ep === null) {
    proxy.countServiceError(service);
    refuse(503, 'no_endpoint', `service ${service.name} has no endpoint to take this connection`);
  }
  return ep;
}

/** The request's Upgrade header, trimmed; undefined when absent or blank. */
function upgradeProtocol(raw: readonly string[]): string | undefined {
  let protocol: string | undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'upgrade') protocol = raw[i + 1];
  const p = protocol?.trim();
  return p === undefined || p === '' ? undefined : p;
}

class UpgradeExchange implements DownstreamSink, UpstreamHandler, DispatchOptions {
  host: string | undefined = undefined;
  hasBody = false;
  // DispatchOptions
  readonly method = 'GET';
  path = '';
  headers: string[] = [];
  readonly body = null;
  upgrade = '';
  readonly #proxy: Proxy;
  readonly #down: UpgradeDownstream;
  #ep: Endpoint | null = null;
  #attempts = 0;
  #connected = false;
  #spliced = false;
  #clientGone = false;
  #done = false;
  /** The attempt's connection, from onConnect until the attempt ends. */
  #upstream: RequestControl | null = null;

  constructor(proxy: Proxy, down: UpgradeDownstream) {
    this.#proxy = proxy;
    this.#down = down;
  }

  start(ep: Endpoint, protocol: string): void {
    this.upgrade = protocol;
    // Forwarded as routed: the normal form of the path (see normalize-path.ts).
    this.path = normaliseTarget(this.#down.target);
    this.#down.attach(this);
    forwardHeaders(this.#down.rawHeaders, this.#down.remoteAddress, this.#down.scheme, this.headers);
    this.#send(ep);
  }

  #send(ep: Endpoint): void {
    this.#ep = ep;
    this.#attempts++;
    this.#connected = false;
    this.#upstream = null;
    this.#proxy.registry.table.acquire(ep.slot);
    try {
      this.#proxy.dispatcherOf(ep).dispatch(this, this);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  onConnect(upstream: RequestControl): void {
    this.#connected = true;
    this.#upstream = upstream;
    if (this.#clientGone) upstream.abort(new ClientAbortError());
  }

  onUpgrade(status: number, raw: readonly string[], socket: Duplex): void {
    this.#upstream = null;
    const ep = this.#ep!;
    this.#proxy.outlier.success(ep.slot);
    if (this.#clientGone) {
      socket.destroy();
      this.#end();
      return;
    }
    const out: string[] = [];
    responseHeaders(raw, out, true);
    this.#spliced = true;
    this.#down.splice(status, out, socket, () => this.#end());
  }

  onHeaders(status: number, raw: readonly string[]): boolean {
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
    this.#down.end();
    this.#end();
  }

  onError(err: Error): void {
    this.#upstream = null;
    const ep = this.#ep;
    if (ep === null || this.#done) return;
    if (this.#clientGone) {
      this.#proxy.countError(ep, 'aborted');
      this.#end();
      return;
    }
    const f = this.#proxy.recordFailure(ep, err, this.#connected);
    if (this.#down.headersSent) {
      this.#down.abort();
      this.#end();
      return;
    }
    if (this.#attempts === 1 && (f.beforeRequest || !this.#connected) && f.kind !== 'headers_timeout') {
      const next = this.#proxy.pickEndpoint(ep.service, ep.slot);
      if (next !== null && next !== ep) {
        this.#ep = null;
        this.#proxy.release(ep);
        this.#send(next);
        return;
      }
    }
    sendError(this.#down, f.status, f.kind, f.reason);
    this.#end();
  }

  onBodyChunk(): void {
    // An upgrade request has no body; bytes after its head belong to the new protocol (splice() forwards them).
  }

  onBodyEnd(): void {}

  onDownstreamDrain(): void {
    this.#upstream?.resume();
  }

  onDownstreamAbort(): void {
    if (this.#done || this.#spliced || this.#clientGone) return;
    this.#clientGone = true;
    this.#upstream?.abort(new ClientAbortError());
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    const ep = this.#ep;
    this.#ep = null;
    if (ep !== null) this.#proxy.release(ep);
  }
}
