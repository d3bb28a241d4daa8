/**
 * The uWebSockets.js front end (the native path): uWS parses HTTP/1.1 and owns the client sockets; each request
 * becomes a UwsDownstream for the proxy, exactly as front-node.ts does with node:http, so both front ends share
 * every rule in proxy.ts and headers.ts. WebSocket upgrades are terminated by uWS and bridged message by message
 * to the endpoint (ws-bridge.ts).
 *
 * uWS' rules, kept here: request data (method, URL, headers) lives only during the handler and is copied out
 * first; a response not ended in its handler has onAborted attached before the handler returns; writes made
 * outside a uWS callback go inside res.cork(); an ArrayBuffer handed to a callback is copied before it returns;
 * after onAborted, or once a response is finished, the response object must not be touched.
 *
 * What uWS refuses before our checks run (nothing is forwarded, no refusal is counted, and the client gets no
 * response): both Content-Length and Transfer-Encoding, whitespace before a colon, control characters in names or
 * values, obs-fold lines, an absolute-form target, more than 48 header fields, headers over ~150 KiB, unknown
 * methods, HTTP/1.0, a missing Host, a garbage request line. Some it closes at once (both lengths, unknown
 * methods); most it takes for an incomplete head: it keeps the bytes, waits for more, and drops the connection
 * silently at its fixed 10 s idle timeout (at once only past 4 KiB of such a head). That includes every HTTP/1.0
 * request: uWS 20.30 parses only request lines ending in ` HTTP/1.1` (uNetworking/uWebSockets issue 1547). No
 * callback of ours runs for such a connection, and uWS.js 20.30 has no hook before its parser (no raw-data or
 * connection callback, no way to adopt a socket accepted elsewhere), so this front end cannot answer HTTP/1.0:
 * clients that speak it (nginx's default proxy_http_version, ab, HTTP/1.0 health checks) need node:http
 * ($BOREALIS_NATIVE=0; see native-free.md). Malformed Content-Length values reach the handler and are refused by
 * headers.ts, but uWS then cuts the connection while parsing the body, usually before our 400 is out. Everything
 * else (two different Content-Lengths, a Transfer-Encoding not ending in chunked, two Hosts, headers over our byte
 * limit...) gets the same 400/431 with a body as on node:http.
 *
 * Other differences from node:http: the response's Date header is uWS' own (it always writes one; the endpoint's
 * is dropped rather than sent twice, as nginx does by default); idle keep-alive connections and slow request
 * heads are cut by uWS' fixed 10 s timeout (node's are options).
 */
import { STATUS_CODES } from 'node:http';
import { EndOfTurn } from './end-of-turn.js';
import type { Downstream, DownstreamSink, FrontEnd } from './downstream.js';
import type { Proxy } from './proxy.js';
import { LIBUS_LISTEN_DEFAULT, type UwsContext, type UwsListenSocket, type UwsRequest, type UwsSharedApp, type UwsSharedModule, type UwsStreamingResponse } from './uws-types.js';
import { WsBridges } from './ws-bridge.js';
import { closeAfterGrace, listenUws } from '../transport/uws-lifecycle.js';
import { nameIs } from './tokens.js';
import { PeerAddressText } from '../transport/peer-address.js';

export interface UwsFrontOptions {
  /**
   * Share the listening port with other listeners (SO_REUSEPORT): the balancer's own threads, each with its own
   * App. Off by default: a second balancer on the same port must fail, not silently split the traffic.
   */
  sharedPort?: boolean;
}

const EMPTY = new Uint8Array(0);

// How a response's body goes out (decided at writeHead).
/** Content-Length known: tryEnd() (uWS writes the length), the unwritten rest kept until onWritable. */
const M_LENGTH = 1;
/** No length: uWS' chunked encoding through write(). */
const M_CHUNKED = 2;
/** No body by definition (HEAD, 204, 304): the endpoint's headers as they are, then endWithoutBody(). */
const M_EMPTY = 3;
/**
 * The connection closes after this response: the body is collected and sent with end(body, true), the only way
 * uWS 20.30 closes after a response. Only the proxy's own short error responses take this path.
 */
const M_CLOSE = 4;

const STATUS_LINES = new Map<number, string>();
function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    STATUS_LINES.set(status, line);
  }
  return line;
}

// req.forEach collects into these (synchronously), so a request costs no closure for it.
let collecting: string[] = [];
let collectedBody = false;
function collectHeader(name: string, value: string): void {
  collecting.push(name, value);
  // Names come lower-cased. Either header means a body to stream (Content-Length: 0 included: harmless).
  if (name === 'content-length' || name === 'transfer-encoding') collectedBody = true;
}

/** Reads a request's head (valid only during the uWS handler) into plain values. */
export interface RequestHead {
  method: string;
  target: string;
  rawHeaders: string[];
  remoteAddress: string;
  hasBody: boolean;
}

const peerAddresses = new PeerAddressText();

export function readHead(res: UwsStreamingResponse, req: UwsRequest): RequestHead {
  const rawHeaders: string[] = [];
  collecting = rawHeaders;
  collectedBody = false;
  req.forEach(collectHeader);
  const query = req.getQuery();
  const url = req.getUrl();
  return {
    method: req.getCaseSensitiveMethod(),
    target: query === undefined ? url : `${url}?${query}`,
    rawHeaders,
    remoteAddress: peerAddresses.text(res.getRemoteAddress()),
    hasBody: collectedBody,
  };
}

// Writes made outside a uWS callback must be corked; cork() takes a callback, so these module-level slots carry
// the operation into one shared function instead of a closure per write.
const OP_HEAD = 1;
const OP_WRITE = 2;
const OP_END = 3;
/** The head with whatever of the response waited for the end of the turn (a whole small body, the end). */
const OP_FLUSH = 4;
let corkTarget: UwsDownstream | null = null;
let corkOp = 0;
let corkChunk: Uint8Array = EMPTY;
let corkResult = true;
function corked(): void {
  corkResult = corkTarget!.run(corkOp, corkChunk);
}

// Heads are written lazily, at the end of the turn (end-of-turn.ts): a small response's head, body and end usually
// arrive in one upstream read, wait, and go out in one cork with tryEnd(), back to back with the turn's other
// responses. A body that comes later, or does not fit in one chunk, is written as it comes (after the head).
const unflushed = new EndOfTurn<UwsDownstream>((down) => down.flushHead());

/** One client request on uWS, as the proxy's Downstream. */
export class UwsDownstream implements Downstream {
  readonly method: string;
  readonly target: string;
  readonly rawHeaders: readonly string[];
  readonly remoteAddress: string;
  readonly scheme = 'http';
  headersSent = false;
  sink: DownstreamSink | null = null;
  readonly #front: UwsFront;
  readonly #res: UwsStreamingResponse;
  /** The client went away, or we closed its connection: `#res` is gone. */
  #gone = false;
  /** The response is complete (ended, or tryEnd wrote the last byte): `#res` is gone. */
  #done = false;
  #close = false;
  #mode = 0;
  #status = 0;
  /** The head waiting to be written (null once written). */
  #head: readonly string[] | null = null;
  #total = 0;
  /** Body bytes uWS accepted (M_LENGTH). */
  #written = 0;
  /** The part of a chunk uWS did not take (M_LENGTH); it starts at body offset #written. */
  #pending: Uint8Array | null = null;
  #endAfterPending = false;
  #waitingDrain = false;
  #onWritableSet = false;
  #collected: Uint8Array[] | null = null;
  /** A whole body (M_LENGTH) waiting with the head for the end of the turn. */
  #deferred: Uint8Array | null = null;
  /** end() came before the head was flushed. */
  #endDeferred = false;
  // Request body: chunks uWS delivered before the proxy asked for them (or while paused), in order.
  #queue: Uint8Array[] | null = null;
  #lastQueued = false;
  #bodyEnded = false;
  #reading = false;
  #paused = false;

  constructor(front: UwsFront, res: UwsStreamingResponse, head: RequestHead) {
    this.#front = front;
    this.#res = res;
    this.method = head.method;
    this.target = head.target;
    this.rawHeaders = head.rawHeaders;
    this.remoteAddress = head.remoteAddress;
    front.started();
    res.onAborted(() => this.#aborted());
    if (head.hasBody) {
      // Attached now or the bytes that came with the head are lost; they wait in #queue until resumeBody().
      res.onData((chunk, isLast) => this.#onData(chunk, isLast));
      res.pause();
      this.#paused = true;
    }
  }

  get open(): boolean {
    return !this.#gone && !this.#done;
  }

  attach(sink: DownstreamSink): void {
    this.sink = sink;
  }

  pauseBody(): void {
    this.#reading = false;
    if (!this.#paused && !this.#bodyEnded && !this.#lastQueued && this.open) {
      this.#paused = true;
      this.#res.pause();
    }
  }

  resumeBody(): void {
    this.#reading = true;
    const q = this.#queue;
    if (q !== null) {
      while (q.length > 0 && this.#reading) this.sink?.onBodyChunk(q.shift()!);
      if (q.length > 0) return;
      if (this.#lastQueued) {
        this.#lastQueued = false;
        this.#bodyEnded = true;
        this.#unpause();
        this.sink?.onBodyEnd();
        return;
      }
    }
    if (this.#paused && !this.#bodyEnded && this.open) {
      this.#paused = false;
      this.#res.resume();
    }
  }

  #onData(chunk: ArrayBuffer, isLast: boolean): void {
    if (!this.open || this.#bodyEnded) return;
    // Neutered when this returns: copy.
    const copy = chunk.byteLength === 0 ? null : new Uint8Array(chunk.slice(0));
    if (this.#reading && (this.#queue === null || this.#queue.length === 0)) {
      if (copy !== null) this.sink?.onBodyChunk(copy);
      if (isLast) {
        this.#bodyEnded = true;
        this.#unpause();
        this.sink?.onBodyEnd();
      }
      return;
    }
    if (copy !== null) (this.#queue ??= []).push(copy);
    if (isLast) {
      this.#lastQueued = true;
      // The pause is the connection's, not this request's: the next request on it must be read.
      this.#unpause();
    }
  }

  #unpause(): void {
    if (this.#paused && this.open) {
      this.#paused = false;
      this.#res.resume();
    }
  }

  writeHead(status: number, headers: readonly string[]): void {
    if (this.headersSent || !this.open) return;
    this.headersSent = true;
    this.#status = status;
    this.#head = headers;
    let length = -1;
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i];
      if (n.length === 14 && nameIs(n, 'content-length')) length = Number(headers[i + 1]);
    }
    if (this.#close) this.#mode = M_CLOSE;
    else if (this.method === 'HEAD' || status === 204 || status === 304) this.#mode = M_EMPTY;
    else if (length >= 0) {
      this.#mode = M_LENGTH;
      this.#total = length;
    } else this.#mode = M_CHUNKED;
    unflushed.add(this);
  }

  write(chunk: Uint8Array): boolean {
    if (!this.open) return true;
    if (this.#mode === M_CLOSE) {
      (this.#collected ??= []).push(chunk);
      return true;
    }
    if (this.#mode === M_EMPTY) return true;
    if (this.#pending !== null) {
      // Only a writer ignoring our `false` gets here: keep the order by appending.
      this.#pending = Buffer.concat([this.#pending, chunk]);
      return false;
    }
    if (this.#head !== null && this.#mode === M_LENGTH && this.#deferred === null && chunk.byteLength === this.#total) {
      // The whole body, with the head still waiting: both go out at the end of the turn.
      this.#deferred = chunk;
      return true;
    }
    return this.#cork(OP_WRITE, chunk);
  }

  end(): void {
    if (!this.open) return;
    if (this.#head !== null) {
      // Nothing written yet (or just a deferred body): the end waits for the head's flush too.
      this.#endDeferred = true;
      return;
    }
    if (this.#pending !== null) {
      // The rest goes out from onWritable, which finishes the response.
      this.#endAfterPending = true;
      return;
    }
    this.#cork(OP_END, EMPTY);
  }

  abort(): void {
    if (!this.open) return;
    this.#gone = true;
    this.#front.finished();
    // onAborted runs inside close(); #gone makes it a no-op.
    this.#res.close();
  }

  closeAfterResponse(): void {
    this.#close = true;
  }

  /**
   * The endpoint accepted a WebSocket: uWS answers the client's handshake (with `headers` from the endpoint's 101)
   * and the request becomes a WebSocket, whose bridge now owns the in-flight count. False when the client is gone.
   */
  upgrade<T>(data: T, key: string, protocol: string, context: UwsContext, headers: readonly string[]): boolean {
    if (!this.open) return false;
    this.#done = true;
    const res = this.#res;
    res.cork(() => {
      // The status first, or uWS would write 200 before our headers (and the upgrade would fail).
      res.writeStatus('101 Switching Protocols');
      for (let i = 0; i < headers.length; i += 2) res.writeHeader(headers[i], headers[i + 1]);
      res.upgrade(data, key, protocol, '', context);
    });
    return true;
  }

  /** Writes the head (with a body and end that waited for it) if it is still waiting: the end-of-turn flush. */
  flushHead(): void {
    if (this.#head !== null && this.open) this.#cork(this.#deferred !== null || this.#endDeferred ? OP_FLUSH : OP_HEAD, EMPTY);
  }

  #cork(op: number, chunk: Uint8Array): boolean {
    corkTarget = this;
    corkOp = op;
    corkChunk = chunk;
    corkResult = true;
    this.#res.cork(corked);
    corkTarget = null;
    corkChunk = EMPTY;
    return corkResult;
  }

  /** @internal One corked operation (corked() calls it). */
  run(op: number, chunk: Uint8Array): boolean {
    const res = this.#res;
    if (this.#head !== null) this.#writeHead(res);
    if (op === OP_FLUSH) {
      const body = this.#deferred;
      this.#deferred = null;
      if (body !== null && !this.#tryEnd(body)) this.#endAfterPending = this.#endDeferred;
      else if (this.#endDeferred) this.run(OP_END, EMPTY);
      this.#endDeferred = false;
      return true;
    }
    switch (this.#mode) {
      case M_LENGTH: {
        if (op === OP_HEAD) {
          // Ends the head (uWS writes Content-Length with the first tryEnd), so the client sees it now.
          if (this.#total > 0 && this.#written === 0) this.#tryEnd(EMPTY);
          return true;
        }
        if (op === OP_WRITE) return this.#tryEnd(chunk);
        // OP_END: a zero-length body has not been ended by tryEnd yet.
        if (this.#written < this.#total) {
          // The upstream pool only completes a response whose length matched; anything else is a bug: cut, not hang.
          this.#gone = true;
          this.#front.finished();
          res.close();
          return true;
        }
        if (!this.#done) {
          res.end();
          this.#finish();
        }
        return true;
      }
      case M_CHUNKED: {
        if (op === OP_WRITE) {
          if (chunk.byteLength === 0) return true;
          if (res.write(chunk)) return true;
          this.#waitingDrain = true;
          this.#watchWritable();
          return false;
        }
        if (op === OP_END) {
          this.#beforeEnd();
          res.end();
          this.#finish();
        }
        return true;
      }
      case M_EMPTY:
        if (op === OP_END) {
          this.#beforeEnd();
          res.endWithoutBody();
          this.#finish();
        }
        return true;
      case M_CLOSE:
        if (op === OP_END) {
          const parts = this.#collected;
          const body = parts === null ? EMPTY : parts.length === 1 ? parts[0] : Buffer.concat(parts);
          res.end(body, true);
          this.#finish();
        }
        return true;
      default:
        return true;
    }
  }

  #writeHead(res: UwsStreamingResponse): void {
    const h = this.#head!;
    this.#head = null;
    res.writeStatus(statusLine(this.#status));
    const keepLength = this.#mode === M_EMPTY;
    for (let i = 0; i < h.length; i += 2) {
      const n = h[i];
      // uWS writes Content-Length itself (end/tryEnd) and always a Date of its own.
      if (n.length === 14 && !keepLength && nameIs(n, 'content-length')) continue;
      if (n.length === 4 && nameIs(n, 'date')) continue;
      res.writeHeader(n, h[i + 1]);
    }
  }

  #tryEnd(chunk: Uint8Array): boolean {
    if (this.#written + chunk.byteLength >= this.#total) this.#beforeEnd();
    const [ok, done] = this.#res.tryEnd(chunk, this.#total);
    if (ok) {
      this.#written += chunk.byteLength;
    } else {
      const accepted = this.#res.getWriteOffset();
      this.#pending = chunk.subarray(accepted - this.#written);
      this.#written = accepted;
      this.#watchWritable();
    }
    if (done) this.#finish();
    return ok;
  }

  #watchWritable(): void {
    if (this.#onWritableSet) return;
    this.#onWritableSet = true;
    this.#res.onWritable((offset) => this.#onWritable(offset));
  }

  #onWritable(offset: number): boolean {
    if (!this.open) return true;
    const p = this.#pending;
    if (p !== null) {
      // #written is where the pending bytes start (nothing is counted written while they wait).
      const rest = p.subarray(offset - this.#written);
      const base = offset;
      const [ok, done] = this.#res.tryEnd(rest, this.#total);
      if (!ok) {
        const accepted = this.#res.getWriteOffset();
        this.#pending = rest.subarray(accepted - base);
        this.#written = accepted;
        return false;
      }
      this.#pending = null;
      this.#written = base + rest.byteLength;
      if (done) this.#finish();
      else if (this.#endAfterPending) this.end();
      if (!this.#endAfterPending) this.sink?.onDownstreamDrain();
      return true;
    }
    if (this.#waitingDrain) {
      this.#waitingDrain = false;
      this.sink?.onDownstreamDrain();
    }
    return true;
  }

  /**
   * A response may end before its request's body was read (the endpoint answered early): a paused body would then
   * hold the connection forever, so reading resumes and the rest is discarded.
   */
  #beforeEnd(): void {
    if (this.#paused && !this.#bodyEnded) {
      this.#paused = false;
      this.#reading = false;
      this.#res.resume();
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#pending = null;
    this.#front.finished();
  }

  #aborted(): void {

    if (this.#gone || this.#done) return;
    this.#gone = true;
    this.#front.finished();
    this.sink?.onDownstreamAbort();
  }
}

export class UwsFront implements FrontEnd {
  readonly transport = 'uWebSockets.js';
  readonly #uws: UwsSharedModule;
  readonly #app: UwsSharedApp;
  readonly #proxy: Proxy;
  readonly #shared: boolean;
  readonly #bridges: WsBridges;
  #listenSocket: UwsListenSocket | null = null;
  #inFlight = 0;
  #onIdle: (() => void) | null = null;
  #closing: Promise<void> | null = null;

  constructor(uws: UwsSharedModule, proxy: Proxy, opts: UwsFrontOptions = {}) {
    this.#uws = uws;
    this.#proxy = proxy;
    this.#shared = opts.sharedPort ?? false;
    this.#app = uws.App();
    this.#bridges = new WsBridges(proxy, this);
    // WebSocket handshakes (a 24-character Sec-WebSocket-Key) go to the ws route; uWS yields anything else to any().
    this.#app.ws('/*', this.#bridges.behavior());
    this.#app.any('/*', (res, req) => this.#onRequest(res, req));
  }

  #onRequest(res: UwsStreamingResponse, req: UwsRequest): void {
    let d: UwsDownstream | null = null;
    try {
      d = new UwsDownstream(this, res, readHead(res, req));
      this.#proxy.handle(d);
    } catch (err) {
      // Only a bug of ours gets here, and it must still answer: uWS ends the process when a handler returns having
      // neither answered nor attached onAborted.
      process.emitWarning(`borealis balancer: uWS request handler failed: ${(err as Error).stack ?? String(err)}`);
      if (d === null) res.end('500 Internal Server Error\n', true);
      else d.abort();
    }
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenUws(host, port, (h, p) => this.bind(h, p));
  }

  /** Binds synchronously (uWS calls back at once); null when the port is taken. */
  bind(host: string, port: number): { host: string; port: number } | null {
    let out: { host: string; port: number } | null = null;
    const options = this.#shared ? LIBUS_LISTEN_DEFAULT : this.#uws.LIBUS_LISTEN_EXCLUSIVE_PORT;
    this.#app.listen(host, port, options, (ls) => {
      if (ls === false) return;
      this.#listenSocket = ls;
      out = { host, port: this.#uws.us_socket_local_port(ls) };
    });
    return out;
  }

  close(graceMs: number): Promise<void> {
    if (this.#closing === null) {
      if (this.#listenSocket !== null) {
        this.#uws.us_listen_socket_close(this.#listenSocket);
        this.#listenSocket = null;
      }
      this.#bridges.closeAll();
      this.#closing = closeAfterGrace(this.#app, graceMs, (finish) => {
        if (this.#inFlight === 0) finish();
        else this.#onIdle = finish;
      });
    }
    return this.#closing;
  }

  /** @internal A request or WebSocket began: close() waits for it (up to the grace). */
  started(): void {
    this.#inFlight++;
  }

  /** @internal */
  finished(): void {
    if (--this.#inFlight === 0 && this.#onIdle !== null) this.#onIdle();
  }
}

