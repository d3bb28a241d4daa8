/**
 * HttpServer on uWebSockets.js (the native path; native.ts loads it). Same answers as node-server.ts, because
 * routing, error bodies and handshake checks are dispatch.ts' in both; this file adapts uWS' objects, and keeps
 * uWS' rules: a request's data (headers, URL, query) is copied out before the handler returns, a response not
 * ended in its handler has `onAborted` attached first and is written later inside `cork()`, and an ArrayBuffer
 * handed to a callback is copied before the callback returns.
 *
 * Where uWS cannot give node-server's exact behaviour (documented at each place): a frame larger than the
 * endpoint's limit plus OVERSIZE_GRACE is cut without a close frame (the client sees 1006, not 1009); frames that
 * break the protocol (reserved opcodes, bad UTF-8) are likewise cut (1006, not 1002/1007); and remoteAddress has
 * port 0 (uWS 20.30 does not expose the peer's port; the address is written as node writes it: `::1`, not uWS'
 * eight full groups). Requests uWS' parser will not take never reach us either:
 * HTTP/1.0, a missing Host, a garbage request line are held unanswered until uWS' 10 s idle timeout closes the
 * connection (node:http answers them; see native-free.md), and unknown methods are closed at once without a
 * response. uWS.js 20.30 runs no callback of ours before its parser, so nothing here can answer them.
 */
import { STATUS_CODES } from 'node:http';
import { ErrorCodes } from '../api/errors.js';
import {
  CLOSE_GRACE_MS,
  DEFAULT_WS_MAX_PAYLOAD,
  DISCARD_FACTOR,
  JSON_TYPE,
  type UpgradeRefusal,
  formatPeer,
  parseTarget,
  refusal,
  renderBody,
} from './dispatch.js';
import { ServerBase } from './server-base.js';
import { closeAfterGrace, listenUws } from './uws-lifecycle.js';
import { formatIp } from './peer-address.js';
import type { HttpHandler, HttpMethod, HttpRequest, HttpResponse, HttpServerOptions, ListenAddress, WsRoute, WsSocket, WsUpgradeRequest } from './types.js';
import type { UwsApp, UwsContext, UwsListenSocket, UwsModule, UwsRequest, UwsResponse, UwsWebSocket } from './uws-api.js';

/**
 * uWS reads a whole message before handing it over and cuts (no close frame) anything above its
 * maxPayloadLength. So that an oversized frame still gets the 1009 close the interface promises, uWS is told
 * the endpoint's limit plus this much (at least the limit again), and the limit is enforced on the message: a
 * confused client gets its 1009, and a socket costs at most this much more memory than the limit.
 */
const OVERSIZE_GRACE = 64 * 1024;

const EMPTY = Buffer.alloc(0);

export class UwsHttpServer extends ServerBase {
  readonly transport = 'uws';
  readonly #uws: UwsModule;
  readonly #app: UwsApp;
  /** WebSocket endpoints by path, to answer an upgrade uWS did not route to one (bad key, unknown path). */
  readonly #endpoints = new Map<string, WsRoute>();
  readonly #sockets = new Set<UwsSocket>();
  readonly #writes = new WriteChecks();
  #listenSocket: UwsListenSocket | null = null;
  #address: ListenAddress | null = null;
  #inFlight = 0;
  /** Set by close(): called when the last request in flight has been answered. */
  #onIdle: (() => void) | null = null;

  /** `uws` is the native module from loadNative() (never the package's JS fallback). */
  constructor(uws: UwsModule, opts: HttpServerOptions = {}) {
    super(opts);
    this.#uws = uws;
    this.#app = uws.App();
    // uWS ranks static routes (the WebSocket endpoints) above this wildcard; a plain GET to an endpoint yields here.
    this.#app.any('/*', (res, req) => this.#onRequest(res, req));
  }

  get address(): ListenAddress | null {
    return this.#address;
  }

  websocket(path: string, route: WsRoute): void {
    const limit = route.maxPayloadBytes ?? DEFAULT_WS_MAX_PAYLOAD;
    this.#endpoints.set(path, route);
    this.#app.ws<SocketData>(path, {
      maxPayloadLength: limit + Math.max(limit, OVERSIZE_GRACE),
      // No idle cut-off and no dropped sends: node-server has neither, and the event stream does its own
      // backpressure (bufferedAmount) while agents are watched by the master's heartbeat timeout.
      idleTimeout: 0,
      maxBackpressure: 0,
      sendPingsAutomatically: false,
      // Frames are small protobufs; compression would cost more CPU than it saves bytes.
      compression: this.#uws.DISABLED,
      upgrade: (res, req, context) => this.#onUpgrade(path, route, limit, res, req, context),
      open: (ws) => this.#onOpen(ws),
      message: (ws, message, isBinary) => ws.getUserData().socket?.received(message, isBinary),
      drain: (ws) => ws.getUserData().socket?.checkWritten(),
      close: (ws, code, message) => ws.getUserData().socket?.closed(code, message),
    });
  }

  listen(address: ListenAddress): Promise<ListenAddress> {
    return listenUws(address.host, address.port, (host, port) => (this.#bind(host, port) ? this.#address! : null));
  }

  #bind(host: string, port: number): boolean {
    let ok = false;
    // Exclusive: a second master on the same port must fail, not share connections with the first (SO_REUSEPORT).
    // The callback runs synchronously.
    this.#app.listen(host, port, this.#uws.LIBUS_LISTEN_EXCLUSIVE_PORT, (ls) => {
      if (ls === false) return;
      this.#listenSocket = ls;
      this.#address = { host, port: this.#uws.us_socket_local_port(ls) };
      ok = true;
    });
    return ok;
  }

  protected shutdown(): Promise<void> {
    // A socket with bytes still queued in user space may not have its close frame out yet: wait the grace.
    let backlog = false;
    for (const s of [...this.#sockets]) {
      backlog ||= s.bufferedAmount > 0;
      s.close(1001, 'server closing');
    }
    if (this.#listenSocket !== null) {
      this.#uws.us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = null;
    }
    return closeAfterGrace(this.#app, CLOSE_GRACE_MS, (finish) => {
      if (backlog) return;
      if (this.#inFlight === 0) finish();
      else this.#onIdle = finish;
    });
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  #onRequest(res: UwsResponse, req: UwsRequest): void {
    try {
      this.#serve(res, req);
    } catch (err) {
      // Only a bug of ours gets here, and it must still answer: uWS ends the process when a handler returns having
      // neither answered nor attached onAborted.
      try {
        writeResponse(res, 'GET', this.dispatcher.failure(err, req.getCaseSensitiveMethod(), req.getUrl()), true);
      } catch {
        // It had answered already.
      }
    }
  }

  /** Answers at once (refusals, synchronous handlers), or leaves an Exchange (with onAborted) to answer later. */
  #serve(res: UwsResponse, req: UwsRequest): void {
    const method = req.getCaseSensitiveMethod();
    const rawQuery = req.getQuery();
    const url = req.getUrl();
    const { path, query } = parseTarget(rawQuery === undefined ? url : `${url}?${rawQuery}`);
    if (req.getHeader('upgrade') !== '' && /(^|[\s,])upgrade($|[\s,])/i.test(req.getHeader('connection'))) {
      // An upgrade uWS did not hand to an endpoint: an unknown path, or a broken WebSocket handshake.
      const route = this.#endpoints.get(path);
      const checked = this.dispatcher.checkUpgrade(route, this.closing, { path, query, headers: readHeaders(req) });
      refuse(res, checked.refusal ?? refusal(400, ErrorCodes.PROTOCOL, 'not a WebSocket handshake (Sec-WebSocket-Key missing or invalid)'));
      return;
    }
    const r = this.dispatcher.resolve(method, path);
    if (r.kind === 'refuse') {
      this.write(res, method, path, r.response);
      return;
    }
    const headers = readHeaders(req);
    const request: HttpRequest = {
      method: method as HttpMethod,
      path,
      params: r.params,
      query,
      headers,
      body: EMPTY,
      remoteAddress: formatPeer(formatIp(new Uint8Array(res.getRemoteAddress())), 0),
    };
    const length = headers['content-length'];
    if ((length === undefined || length === '0') && headers['transfer-encoding'] === undefined) {
      this.#answer(res, null, r.handler, request);
      return;
    }
    const ex = new Exchange(this, res, method, path);
    this.#readBody(ex, res, length, (body) => {
      request.body = body;
      this.#answer(res, ex, r.handler, request);
    });
  }

  /**
   * Runs the handler. A synchronous answer is written at once (we are inside a uWS callback, so corked); an
   * asynchronous one goes through an Exchange, created here if the body reader has not already made one.
   */
  #answer(res: UwsResponse, ex: Exchange | null, handler: HttpHandler, request: HttpRequest): void {
    let out: HttpResponse | Promise<HttpResponse>;
    try {
      out = handler(request);
    } catch (err) {
      out = this.dispatcher.failure(err, request.method, request.path);
    }
    if (out instanceof Promise) {
      const x = ex ?? new Exchange(this, res, request.method, request.path);
      out.then(
        (r) => x.respond(r),
        (err: unknown) => x.respond(this.dispatcher.failure(err, request.method, request.path)),
      );
    } else if (ex !== null) {
      ex.respond(out);
    } else {
      this.write(res, request.method, request.path, out);
    }
  }

  /** @internal Writes an answer; one that cannot be rendered (a cyclic or BigInt json) becomes a 500 instead. */
  write(res: UwsResponse, method: string, path: string, r: HttpResponse): void {
    const close = this.closing; // an answer after close() began also closes its connection
    try {
      writeResponse(res, method, r, close);
    } catch (err) {
      // Nothing was written: writeResponse renders first.
      writeResponse(res, method, this.dispatcher.failure(err, method, path), close);
    }
  }

  /** Reads the whole body, refusing (413) past the limit: by Content-Length up front, else as it streams in. */
  #readBody(ex: Exchange, res: UwsResponse, length: string | undefined, then: (body: Buffer) => void): void {
    const limit = this.dispatcher.bodyLimit;
    const declared = length === undefined ? NaN : Number(length);
    let over = Number.isFinite(declared) && declared > limit;
    if (over && declared > limit * DISCARD_FACTOR) {
      // It would be cut past the discard bound anyway: answer now and close, without reading any of it.
      ex.respond(this.dispatcher.failure(this.dispatcher.tooLarge(), ex.method, ex.path));
      return;
    }
    // With a Content-Length (which uWS holds the body to) the chunks are copied into one buffer as they arrive;
    // chunked bodies are copied chunk by chunk and joined at the end.
    let whole: Buffer | null = !over && Number.isFinite(declared) ? Buffer.allocUnsafe(declared) : null;
    let chunks: Buffer[] | null = null;
    let size = 0;
    res.onData((chunk, isLast) => {
      const n = chunk.byteLength;
      size += n;
      if (!over && size > limit) {
        over = true;
        whole = chunks = null;
      }
      if (over) {
        if (size > limit * DISCARD_FACTOR) ex.abandon();
        else if (isLast) ex.respond(this.dispatcher.failure(this.dispatcher.tooLarge(), ex.method, ex.path));
        return;
      }
      if (whole !== null) whole.set(new Uint8Array(chunk), size - n);
      else if (n > 0) (chunks ??= []).push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) then(whole !== null ? whole.subarray(0, size) : chunks === null ? EMPTY : Buffer.concat(chunks, size));
    });
  }

  /** @internal Exchange bookkeeping: requests in flight hold close() until answered (or the grace ends). */
  started(): void {
    this.#inFlight++;
  }

  /** @internal */
  finished(): void {
    if (--this.#inFlight === 0 && this.#onIdle !== null) this.#onIdle();
  }

  // ---- WebSocket ----------------------------------------------------------------------------------

  #onUpgrade(path: string, route: WsRoute, limit: number, res: UwsResponse, req: UwsRequest, context: UwsContext): void {
    let data: SocketData;
    let key: string;
    try {
      const rawQuery = req.getQuery();
      const headers = readHeaders(req);
      const upgrade: WsUpgradeRequest = { path, query: parseTarget(rawQuery === undefined ? path : `${path}?${rawQuery}`).query, headers };
      const checked = this.dispatcher.checkUpgrade(route, this.closing, upgrade);
      if (checked.refusal !== undefined) {
        refuse(res, checked.refusal);
        return;
      }
      key = headers['sec-websocket-key'] ?? '';
      const remoteAddress = formatPeer(formatIp(new Uint8Array(res.getRemoteAddress())), 0);
      data = { route, upgrade, protocol: checked.protocol, remoteAddress, limit, socket: null };
    } catch (err) {
      this.dispatcher.onInternalError(err, { method: 'GET', path });
      refuse(res, refusal(500, ErrorCodes.INTERNAL, 'internal error'));
      return;
    }
    // Outside the try: `open` (and the route's onOpen) runs inside upgrade(), after which `res` is gone.
    res.upgrade(data, key, data.protocol, '', context);
  }

  #onOpen(ws: UwsWebSocket<SocketData>): void {
    const data = ws.getUserData();
    const socket = new UwsSocket(ws, data, this.#sockets, this.#writes);
    data.socket = socket;
    this.#sockets.add(socket);
    data.route.onOpen(socket, data.upgrade);
  }
}

/** What a WebSocket carries from its upgrade to its callbacks (uWS' per-socket user data). */
interface SocketData {
  route: WsRoute;
  upgrade: WsUpgradeRequest;
  protocol: string;
  remoteAddress: string;
  limit: number;
  socket: UwsSocket | null;
}

/** A request answered after its uWS callback returned (a body to read, or an async handler), until answered or aborted. */
class Exchange {
  readonly method: string;
  readonly path: string;
  readonly #server: UwsHttpServer;
  readonly #res: UwsResponse;
  #done = false;

  constructor(server: UwsHttpServer, res: UwsResponse, method: string, path: string) {
    this.#server = server;
    this.#res = res;
    this.method = method;
    this.path = path;
    server.started();
    res.onAborted(() => this.#finish());
  }

  /** Writes the answer, corked: this may run on a later turn than the request's callback. */
  respond(r: HttpResponse): void {
    if (this.#done) return;
    this.#res.cork(() => this.#server.write(this.#res, this.method, this.path, r));
    this.#finish();
  }

  /** Past the discard bound: the connection is simply closed (onAborted runs). */
  abandon(): void {
    if (!this.#done) this.#res.close();
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#server.finished();
  }
}

const STATUS_LINES = new Map<number, string>();

function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    STATUS_LINES.set(status, line);
  }
  return line;
}

/**
 * Renders before writing anything, so a body that cannot be rendered throws with the response untouched.
 * uWS writes Content-Length itself and `Connection: close` from end()'s flag, so those two are not copied.
 */
function writeResponse(res: UwsResponse, method: string, r: HttpResponse, closeConnection: boolean): void {
  const rendered = renderBody(r);
  let contentType = rendered.contentType;
  let close = closeConnection;
  res.writeStatus(statusLine(r.status));
  if (r.headers !== undefined) {
    for (const k of Object.keys(r.headers)) {
      const v = r.headers[k];
      const lk = k.toLowerCase();
      if (lk === 'content-type') contentType = v; // the handler's own wins, as with node's setHeader
      else if (lk === 'connection') close ||= v.toLowerCase() === 'close';
      else if (lk !== 'content-length') res.writeHeader(k, v);
    }
  }
  res.writeHeader('Content-Type', contentType);
  if (method !== 'HEAD') {
    res.end(rendered.body, close);
    return;
  }
  // HEAD: the headers GET would get, no body. uWS 20.30's endWithoutBody(length) writes nothing at all (and the
  // response never counts as answered), so the length goes in by hand and endWithoutBody() gets no arguments.
  res.writeHeader('Content-Length', String(Buffer.byteLength(rendered.body)));
  if (close) res.writeHeader('Connection', 'close');
  res.endWithoutBody();
}

/** A refused handshake: the error body, then the connection closes (there is no request body to drain). */
function refuse(res: UwsResponse, r: UpgradeRefusal): void {
  res.writeStatus(statusLine(r.status)).writeHeader('Content-Type', JSON_TYPE).end(r.body, true);
}

/**
 * Node joins repeated headers with ", " except these, where it keeps the first (and cookies, joined with "; ");
 * the same here, so a handler sees the same headers whichever server runs.
 */
const SINGLE_HEADERS = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

/** The request's headers, copied (uWS gives names lower-cased). */
function readHeaders(req: UwsRequest): Record<string, string> {
  const headers = Object.create(null) as Record<string, string>;
  req.forEach((k, v) => {
    const prev = headers[k];
    if (prev === undefined) headers[k] = v;
    else if (k === 'cookie') headers[k] = `${prev}; ${v}`;
    else if (!SINGLE_HEADERS.has(k)) headers[k] = `${prev}, ${v}`;
  });
  return headers;
}

/**
 * Sockets with onWritten callbacks outstanding, checked once per turn: by setImmediate, uWS has uncorked
 * whatever its callbacks wrote, so `getBufferedAmount()` then counts every byte not yet in the kernel.
 */
class WriteChecks {
  readonly #pending = new Set<UwsSocket>();
  #scheduled = false;

  add(s: UwsSocket): void {
    this.#pending.add(s);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#run);
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    const due = [...this.#pending];
    this.#pending.clear();
    for (const s of due) s.checkWritten();
  };
}

/** Bytes a server frame of `n` payload bytes takes on the wire (no mask, no compression). */
function frameSize(n: number): number {
  return n < 126 ? n + 2 : n < 65536 ? n + 4 : n + 10;
}

/**
 * One uWS WebSocket as a WsSocket. `onWritten` accounting: every frame's wire size is added to `#queued`; the
 * bytes handed to the kernel are `#queued - getBufferedAmount()` (uWS' backpressure is user space only), and a
 * callback runs once that passes the total recorded after its frame (checked next turn, and on every drain).
 */
class UwsSocket implements WsSocket {
  readonly protocol: string;
  readonly remoteAddress: string;
  #ws: UwsWebSocket<SocketData> | null;
  readonly #limit: number;
  readonly #registry: Set<UwsSocket>;
  readonly #writes: WriteChecks;
  readonly #messageCbs: ((bytes: Uint8Array, isBinary: boolean) => void)[] = [];
  readonly #closeCbs: ((code: number, reason: string) => void)[] = [];
  #queued = 0;
  /** Pending onWritten callbacks from #head on, each with the #queued total its frame must reach. */
  readonly #marks: number[] = [];
  readonly #written: ((() => void) | null)[] = [];
  #head = 0;
  /** Inside our own end(): uWS runs the close handler synchronously there. */
  #ending = false;

  constructor(ws: UwsWebSocket<SocketData>, data: SocketData, registry: Set<UwsSocket>, writes: WriteChecks) {
    this.#ws = ws;
    this.protocol = data.protocol;
    this.remoteAddress = data.remoteAddress;
    this.#limit = data.limit;
    this.#registry = registry;
    this.#writes = writes;
  }

  get bufferedAmount(): number {
    return this.#ws === null ? 0 : this.#ws.getBufferedAmount();
  }

  send(bytes: Uint8Array, onWritten?: () => void): void {
    this.#send(bytes, true, onWritten);
  }

  sendText(text: string, onWritten?: () => void): void {
    // As bytes: uWS would convert the string to UTF-8 anyway, and the frame's size must be known.
    this.#send(Buffer.from(text, 'utf8'), false, onWritten);
  }

  #send(bytes: Uint8Array, binary: boolean, onWritten: (() => void) | undefined): void {
    const ws = this.#ws;
    if (ws === null) return;
    // Never 2 (dropped): maxBackpressure is 0, so uWS buffers whatever the kernel does not take.
    ws.send(bytes, binary, false);
    this.#queued += frameSize(bytes.byteLength);
    if (onWritten === undefined) return;
    this.#marks.push(this.#queued);
    this.#written.push(onWritten);
    this.#writes.add(this);
  }

  close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws === null) return;
    this.#ending = true;
    try {
      ws.end(code, reason);
    } finally {
      this.#ending = false;
    }
  }

  onMessage(cb: (bytes: Uint8Array, isBinary: boolean) => void): void {
    this.#messageCbs.push(cb);
  }

  onClose(cb: (code: number, reason: string) => void): void {
    this.#closeCbs.push(cb);
  }

  /** uWS' message handler: `message` is neutered when this returns, so handlers get a copy. */
  received(message: ArrayBuffer, isBinary: boolean): void {
    if (message.byteLength > this.#limit) {
      this.close(1009, `message of ${message.byteLength} bytes exceeds the limit of ${this.#limit}`);
      return;
    }
    if (this.#messageCbs.length === 0) return;
    const bytes = Buffer.from(new Uint8Array(message));
    for (const cb of this.#messageCbs) cb(bytes, isBinary);
  }

  /** Runs the onWritten callbacks whose frames are now in the kernel. */
  checkWritten(): void {
    const ws = this.#ws;
    if (ws === null || this.#head === this.#marks.length) return;
    const inKernel = this.#queued - ws.getBufferedAmount();
    while (this.#head < this.#marks.length && this.#marks[this.#head] <= inKernel) {
      const cb = this.#written[this.#head]!;
      this.#written[this.#head++] = null;
      cb();
      if (this.#ws === null) return; // a callback closed the socket (and dropped the rest)
    }
    if (this.#head === this.#marks.length) {
      this.#marks.length = this.#written.length = this.#head = 0;
    }
  }

  /** uWS' close handler (for our own end() too): after it, the uWS object must not be touched. */
  closed(code: number, message: ArrayBuffer): void {
    if (this.#ws === null) return;
    this.#ws = null;
    this.#registry.delete(this);
    // Frames not yet in the kernel will not be: their callbacks never run (the WsSocket contract).
    this.#marks.length = this.#written.length = this.#head = 0;
    const reason = Buffer.from(message).toString('utf8');
    // When we closed it, the close callbacks run on a later turn, as with ws: never inside the caller's close().
    if (this.#ending) setImmediate(() => this.#fireClose(code, reason));
    else this.#fireClose(code, reason);
  }

  #fireClose(code: number, reason: string): void {
    for (const cb of this.#closeCbs) cb(code, reason);
  }
}
