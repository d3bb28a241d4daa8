/**
 * WebSocket upgrades on the uWebSockets.js front end. uWS terminates the client's WebSocket itself (it cannot hand
 * over the raw socket, as node:http does for websocket.ts' byte splice), so each connection is bridged message by
 * message: routed and picked like any request, then a `ws` client opens a WebSocket to the endpoint with the
 * client's headers (hop-by-hop ones dropped, X-Forwarded-* and Via set) and subprotocols; once the endpoint
 * accepts, uWS completes the client's handshake with the endpoint's subprotocol and 101 headers. A handshake the
 * endpoint refuses comes back as its response; one that cannot connect is retried once on another endpoint.
 *
 * Messages keep their kind (text or binary) and close codes pass both ways (1005 as a close without a code,
 * 1006 as a cut connection). Pings are answered per hop (uWS and ws both pong). The endpoint stays active in
 * least-connections until both sides have closed.
 *
 * Backpressure: endpoint → client, the endpoint's socket is paused while uWS holds more than HIGH_WATER bytes for
 * the client, and resumed on uWS' drain. Client → endpoint, uWS 20.30 cannot pause a WebSocket's reads, so what
 * waits for the endpoint is bounded instead: past MAX_QUEUED_TO_ENDPOINT the client is closed with 1013 (try again
 * later), rather than the balancer buffering without limit. Messages are limited to MAX_MESSAGE bytes (1009).
 */
import type { IncomingMessage } from 'node:http';
import { type Socket, type TcpNetConnectOpts, connect } from 'node:net';
import WebSocket from 'ws';
import type { DownstreamSink } from './downstream.js';
import type { Endpoint } from './endpoints.js';
import type { UwsFront } from './front-uws.js';
import { UwsDownstream, readHead } from './front-uws.js';
import { forwardHeaders, responseHeaders } from './headers.js';
import { type Proxy, sendError } from './proxy.js';
import { UpstreamCode, UpstreamError } from './http1/errors.js';
import { admitUpgrade } from './websocket.js';
import type { UwsBehavior } from '../transport/uws-api.js';
import type { UwsClosableWebSocket, UwsContext, UwsRequest, UwsStreamingResponse, UwsWebSocket } from './uws-types.js';
import { normaliseTarget } from './normalize-path.js';

/** The largest message either side may send; larger ones close the connection (1009 from the endpoint side). */
const MAX_MESSAGE = 16 * 1024 * 1024;
/** uWS bytes queued for a slow client above which the endpoint's socket is paused (Node's stream default ×4). */
const HIGH_WATER = 64 * 1024;
/** Bytes queued towards a slow endpoint before the client is told to back off (1013): a few large messages. */
const MAX_QUEUED_TO_ENDPOINT = 4 * MAX_MESSAGE;

/** Headers of the endpoint's 101 that uWS writes itself (or that describe the endpoint's side of the handshake). */
const OWN_101 = new Set(['connection', 'upgrade', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions']);
/** Client handshake headers the `ws` client writes itself for its own handshake with the endpoint. */
const OWN_REQUEST = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

interface BridgeData {
  bridge: Bridge;
}

/** The WebSocket connections of one front end. */
export class WsBridges {
  readonly proxy: Proxy;
  readonly front: UwsFront;
  readonly live = new Set<Bridge>();
  #closing = false;

  constructor(proxy: Proxy, front: UwsFront) {
    this.proxy = proxy;
    this.front = front;
  }

  get closing(): boolean {
    return this.#closing;
  }

  behavior(): UwsBehavior<BridgeData> {
    return {
      maxPayloadLength: MAX_MESSAGE,
      // No idle cut-off (the node:http path has none; the endpoint and the client decide how long a session lasts).
      idleTimeout: 0,
      // Never drop: backpressure pauses the endpoint instead.
      maxBackpressure: 0,
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => this.#upgrade(res as UwsStreamingResponse, req, context),
      open: (ws) => ws.getUserData().bridge.clientOpen(ws),
      message: (ws, message, isBinary) => ws.getUserData().bridge.fromClient(message, isBinary),
      drain: (ws) => ws.getUserData().bridge.clientDrained(),
      close: (ws, code, message) => ws.getUserData().bridge.clientClosed(code, message),
    };
  }

  #upgrade(res: UwsStreamingResponse, req: UwsRequest, context: UwsContext): void {
    let d: UwsDownstream | null = null;
    try {
      const head = readHead(res, req);
      const key = req.getHeader('sec-websocket-key');
      d = new UwsDownstream(this.front, res, head);
      new Bridge(this, d, key, context).start();
    } catch (err) {
      process.emitWarning(`borealis balancer: uWS upgrade handler failed: ${(err as Error).stack ?? String(err)}`);
      if (d === null) res.end('500 Internal Server Error\n', true);
      else d.abort();
    }
  }

  /** Closes every session (1001 both ways) and every handshake in progress. */
  closeAll(): void {
    this.#closing = true;
    for (const b of [...this.live]) b.goAway();
  }
}

/** The client's Sec-WebSocket-Protocol offers, in order, from every such header. */
function offeredProtocols(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() !== 'sec-websocket-protocol') continue;
    for (const p of raw[i + 1].split(',')) {
      const t = p.trim();
      if (t !== '') out.push(t);
    }
  }
  return out;
}

/** Close codes a close frame may carry (RFC 6455 §7.4; 1005 and 1006 are never sent). */
function sendable(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

class Bridge implements DownstreamSink {
  readonly #bridges: WsBridges;
  readonly #proxy: Proxy;
  readonly #down: UwsDownstream;
  readonly #key: string;
  readonly #context: UwsContext;
  readonly #facts = { host: undefined as string | undefined, hasBody: false };
  #protocols: string[] = [];
  #ep: Endpoint | null = null;
  #attempts = 0;
  #connected = false;
  #timedOut = false;
  #timer: NodeJS.Timeout | null = null;
  #up: WebSocket | null = null;
  #client: UwsClosableWebSocket<BridgeData> | null = null;
  #clientOpen = false;
  #upPaused = false;
  #ended = false;
  #resumeRefusal: (() => void) | null = null;

  constructor(bridges: WsBridges, down: UwsDownstream, key: string, context: UwsContext) {
    this.#bridges = bridges;
    this.#proxy = bridges.proxy;
    this.#down = down;
    this.#key = key;
    this.#context = context;
  }

  /** The same admission as websocket.ts' proxyUpgrade, then the endpoint's handshake. */
  start(): void {
    const down = this.#down;
    if (this.#bridges.closing) {
      this.#refuse(503, 'no_endpoint', 'the balancer is shutting down');
      return;
    }
    const ep = admitUpgrade(this.#proxy, down, this.#facts, (status, kind, reason) => this.#refuse(status, kind, reason));
    if (ep === null) return;
    down.attach(this);
    this.#protocols = offeredProtocols(down.rawHeaders);
    this.#bridges.live.add(this);
    this.#send(ep);
  }

  /** Our own answer to a handshake we do not forward; the connection closes after it, as on node:http. */
  #refuse(status: number, kind: Parameters<typeof sendError>[2], reason: string): void {
    this.#down.closeAfterResponse();
    sendError(this.#down, status, kind, reason);
  }

  #send(ep: Endpoint): void {
    this.#ep = ep;
    this.#attempts++;
    this.#connected = false;
    this.#proxy.registry.table.acquire(ep.slot);
    const fwd: string[] = [];
    forwardHeaders(this.#down.rawHeaders, this.#down.remoteAddress, this.#down.scheme, fwd);
    const headers: Record<string, string> = {};
    for (let i = 0; i < fwd.length; i += 2) {
      const n = fwd[i].toLowerCase();
      if (OWN_REQUEST.has(n)) continue;
      const prev = headers[n];
      headers[n] = prev === undefined ? fwd[i + 1] : `${prev}${n === 'cookie' ? '; ' : ', '}${fwd[i + 1]}`;
    }
    // Forwarded as routed: the normal form of the path (see normalize-path.ts).
    const up = new WebSocket(`ws://${ep.address}${normaliseTarget(this.#down.target)}`, this.#protocols, {
      headers,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE,
      followRedirects: false,
      // uWS already checked the client's text frames; the endpoint's are relayed as they come.
      skipUTF8Validation: true,
      createConnection: (opts: TcpNetConnectOpts): Socket => {
        const s = connect(opts);
        s.once('connect', () => (this.#connected = true));
        return s;
      },
    } as WebSocket.ClientOptions);
    this.#up = up;
    this.#upPaused = false;
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      up.terminate();
    }, this.#proxy.poolOptions.timeouts.headersMs);
    this.#timer.unref();
    let upgradeHeaders: string[] = [];
    up.once('upgrade', (response) => {
      const out: string[] = [];
      responseHeaders(response.rawHeaders, out, true);
      for (let i = 0; i < out.length; i += 2) if (!OWN_101.has(out[i].toLowerCase())) upgradeHeaders.push(out[i], out[i + 1]);
    });
    up.once('open', () => {
      this.#clearTimer();
      this.#proxy.outlier.success(ep.slot);
      if (!this.#down.upgrade<BridgeData>({ bridge: this }, this.#key, up.protocol, this.#context, upgradeHeaders)) {
        // The client went away during the handshake.
        up.terminate();
      }
      upgradeHeaders = [];
    });
    up.on('unexpected-response', (_req, response) => this.#relayRefusal(ep, response));
    up.on('error', (err: Error & { code?: string }) => this.#upError(ep, up, err));
    up.on('message', (data: Buffer, isBinary: boolean) => this.#fromEndpoint(data, isBinary));
    up.on('close', (code: number, reason: Buffer) => this.#upClosed(up, code, reason));
  }

  // ---- handshake outcomes ---------------------------------------------------------------------

  #relayRefusal(ep: Endpoint, response: IncomingMessage): void {
    this.#clearTimer();
    const status = response.statusCode ?? 502;
    this.#proxy.recordStatus(ep, status);
    const out: string[] = [];
    responseHeaders(response.rawHeaders, out);
    const down = this.#down;
    down.writeHead(status, out);
    // Streamed with backpressure like any response; one cut short cuts the client's connection too (as the byte
    // splice on node:http would), so the client sees the truncation.
    response.on('data', (c: Buffer) => {
      if (!down.write(c)) response.pause();
    });
    this.#resumeRefusal = () => response.resume();
    response.on('end', () => down.end());
    response.on('close', () => {
      if (down.open) down.abort();
      this.#end();
    });
    response.on('error', () => undefined);
  }

  #upError(ep: Endpoint, up: WebSocket, err: Error & { code?: string }): void {
    if (up !== this.#up) return;
    if (this.#clientOpen || this.#ended) return; // after the handshake, 'close' follows and says it all
    this.#clearTimer();
    if (!this.#down.open) {
      this.#proxy.countError(ep, 'aborted');
      this.#end();
      return;
    }
    const cause = this.#timedOut ? new UpstreamError(UpstreamCode.headersTimeout, 'no handshake response in time') : err;
    const f = this.#proxy.recordFailure(ep, cause, this.#connected);
    if (this.#attempts === 1 && (f.beforeRequest || !this.#connected) && f.kind !== 'headers_timeout') {
      const next = this.#proxy.pickEndpoint(ep.service, ep.slot);
      if (next !== null && next !== ep) {
        this.#up = null;
        this.#proxy.release(ep);
        this.#send(next);
        return;
      }
    }
    this.#refuse(f.status, f.kind, f.reason);
    this.#end();
  }

  // ---- the handshake request's sink (a relayed refusal's backpressure) ----

  onBodyChunk(): void {}
  onBodyEnd(): void {}
  onDownstreamDrain(): void {
    this.#resumeRefusal?.();
  }
  onDownstreamAbort(): void {
    // The client left during the handshake: open() finds it gone and cuts the endpoint; a relay ends on its own.
  }

  // ---- the session ------------------------------------------------------------------------------

  /** uWS' open: runs inside our upgrade() call. */
  clientOpen(ws: UwsWebSocket<BridgeData>): void {
    this.#client = ws as UwsClosableWebSocket<BridgeData>;
    this.#clientOpen = true;
    if (this.#bridges.closing) this.goAway();
  }

  /** A client message (neutered when this returns: copied). */
  fromClient(message: ArrayBuffer, isBinary: boolean): void {
    const up = this.#up;
    if (up === null || up.readyState !== WebSocket.OPEN) return;
    up.send(Buffer.from(message.slice(0)), { binary: isBinary });
    if (up.bufferedAmount > MAX_QUEUED_TO_ENDPOINT) this.#client?.end(1013, 'the endpoint is not keeping up');
  }

  #fromEndpoint(data: Buffer, isBinary: boolean): void {
    const ws = this.#client;
    if (ws === null) return;
    // 0: buffered by uWS (backpressure); 1: sent; 2 (dropped) cannot happen with maxBackpressure 0.
    ws.send(data, isBinary, false);
    if (!this.#upPaused && ws.getBufferedAmount() > HIGH_WATER) {
      this.#upPaused = true;
      this.#up?.pause();
    }
  }

  clientDrained(): void {
    const ws = this.#client;
    if (this.#upPaused && ws !== null && ws.getBufferedAmount() <= HIGH_WATER) {
      this.#upPaused = false;
      this.#up?.resume();
    }
  }

  /** uWS' close (the client's close, or ours through end()): the WebSocket object is dead from here. */
  clientClosed(code: number, message: ArrayBuffer): void {
    this.#client = null;
    const up = this.#up;
    if (up !== null && (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING)) {
      if (code === 1006 || up.readyState === WebSocket.CONNECTING) up.terminate();
      else if (sendable(code)) up.close(code, Buffer.from(message).toString('utf8'));
      else up.close();
    }
    this.#maybeEnd();
  }

  #upClosed(up: WebSocket, code: number, reason: Buffer): void {
    if (up !== this.#up) return;
    this.#clearTimer();
    this.#up = null;
    const ws = this.#client;
    if (ws !== null) {
      this.#client = null;
      if (code === 1006) ws.close();
      else if (sendable(code)) ws.end(code, reason.toString('utf8'));
      else ws.end(1005);
    }
    this.#maybeEnd();
  }

  /** Shutdown: both sides are told the balancer is going away; handshakes in progress are cut. */
  goAway(): void {
    const ws = this.#client;
    if (ws !== null) {
      this.#client = null;
      ws.end(1001, 'balancer shutting down');
    }
    const up = this.#up;
    if (up !== null) {
      if (up.readyState === WebSocket.OPEN) up.close(1001, 'balancer shutting down');
      else up.terminate();
    }
    if (!this.#clientOpen && this.#down.open) this.#down.abort();
  }

  #maybeEnd(): void {
    if (this.#client === null && (this.#up === null || this.#up.readyState === WebSocket.CLOSED)) this.#end();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#clearTimer();
    this.#bridges.live.delete(this);
    const ep = this.#ep;
    this.#ep = null;
    if (ep !== null) this.#proxy.release(ep);
    // After the upgrade the in-flight count is the session's (the request's ended with the handshake).
    if (this.#clientOpen) this.#bridges.front.finished();
  }
}
