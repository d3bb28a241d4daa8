/**
 * One keep-alive HTTP/1.1 connection to an endpoint, carrying one request at a time (no pipelining: a slow
 * response must not hold up the requests behind it, and least-connections counts requests).
 *
 * Pooled connections read with `onread` into one buffer shared by every socket of the thread: the parser and
 * the body copy take what they need synchronously, so no read allocates a buffer of its own, and a body slice is
 * copied into a Buffer sized to it (pooled by Node when small). Connections opened for an upgrade read through
 * 'data' events instead: their socket is handed over on the 101 as an ordinary stream.
 *
 * Timeouts are not timers: the pool's sweep calls sweep() every tick and each connection compares its phase's
 * start (the pool's coarse clock) with the phase's limit. Reads only set a flag the sweep looks at.
 */
import { type Socket, connect } from 'node:net';
import type { UpstreamTimeouts } from '../types.js';
import type { BodySink, BodySource, DispatchOptions, RequestControl, UpstreamHandler } from './contract.js';
import { UpstreamCode, UpstreamError } from './errors.js';
import { BodyFraming, CHUNK_END, LAST_CHUNK, chunkHeader, requestHead } from './request-head.js';
import { ParseState, ResponseParser, type ResponseSink } from './response-parser.js';
import { EndOfTurn } from '../end-of-turn.js';

/** Node's own read size for sockets (libuv suggests 64 KiB): one read takes whatever the kernel has. */
const READ_BUFFER_BYTES = 64 * 1024;
/** Every pooled socket of this thread reads here; see the file comment for why that is safe. */
const READ_BUFFER = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** Request heads without a body are written together at the end of the turn (end-of-turn.ts). */
const unsent = new EndOfTurn<Connection>((c) => c.flushHead());

/** An endpoint's Keep-Alive: timeout=N is trusted minus this margin (undici's keepAliveTimeoutThreshold). */
const KEEP_ALIVE_HINT_MARGIN_MS = 1_000;

export const Phase = {
  CONNECTING: 1,
  /** The head is out; the body is being written. */
  WRITING: 2,
  /** The request is out; waiting for the response head. */
  AWAIT_HEAD: 3,
  /** Reading the response body. */
  BODY: 4,
  /** In the pool, waiting for a request. */
  IDLE: 5,
  CLOSED: 6,
  /** Handed over to the upgrade handler. */
  UPGRADED: 7,
} as const;

/** What a connection needs from its pool. */
export interface ConnectionHost {
  readonly host: string;
  readonly port: number;
  /** host:port, the Host header for requests that came without one. */
  readonly address: string;
  readonly timeouts: UpstreamTimeouts;
  readonly keepAliveMs: number;
  /** The sweep's period: an idle time shorter than this cannot be honoured. */
  readonly tickMs: number;
  /** The coarse clock (ms), advanced by the sweep. */
  readonly now: number;
  /** The connection finished a response and can take another request. */
  released(c: Connection): void;
  /** The connection is gone: closed, failed, or handed over to an upgrade handler. */
  removed(c: Connection): void;
}

export class Connection implements RequestControl, BodySink, ResponseSink {
  readonly socket: Socket;
  readonly parser: ResponseParser;
  phase: number = Phase.CONNECTING;
  /** When the current phase began, or the body last moved (the host's coarse clock). */
  since: number;
  /** Bytes arrived since the last sweep. */
  active = false;
  /** Response body reading paused by the handler (onHeaders/onData returned false). */
  paused = false;
  /** Position in the pool's list of connections (the pool's bookkeeping). */
  index = -1;
  /** Responses completed on it. */
  served = 0;
  /** How long it may stay idle before the next request: the pool's keep-alive, or less when the endpoint says. */
  idleMs = 0;
  /** Set by requestHead(). */
  framing: number = BodyFraming.NONE;
  /** Opened for an upgrade: reads through 'data' events, never pooled. */
  readonly forUpgrade: boolean;
  handler: UpstreamHandler | null;
  readonly #host: ConnectionHost;
  #opts: DispatchOptions | null;
  #body: BodySource | null = null;
  /** The request body was written to its end (or there was none). */
  #bodyDone = true;
  /** A body write is waiting for 'drain' (the endpoint is not reading): the one wait in WRITING that is timed. */
  #waitingDrain = false;
  /** The request head waiting for flushUnsent(). */
  #unsent: string | null = null;
  readonly #onData: ((chunk: Buffer) => void) | null = null;
  readonly #onEnd = (): void => this.#ended();
  readonly #onError = (err: Error): void => this.#socketError(err);
  readonly #onClose = (): void => this.#socketClosed();
  readonly #onDrain = (): void => this.#drained();

  /** Opens a connection for `opts`; the request starts once it is connected. */
  constructor(host: ConnectionHost, opts: DispatchOptions, handler: UpstreamHandler) {
    this.#host = host;
    this.#opts = opts;
    this.handler = handler;
    this.since = host.now;
    this.parser = new ResponseParser(this);
    this.forUpgrade = opts.upgrade != null;
    if (this.forUpgrade) {
      this.socket = connect({ host: host.host, port: host.port, noDelay: true });
      const onData = (chunk: Buffer): void => {
        this.#input(chunk, 0, chunk.length);
        if (this.paused && this.phase === Phase.BODY) this.socket.pause();
      };
      this.#onData = onData;
      this.socket.on('data', onData);
    } else {
      this.socket = connect({
        host: host.host,
        port: host.port,
        noDelay: true,
        onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.#read(n, buf as Buffer) },
      });
    }
    this.socket.once('connect', () => this.#begin());
    this.socket.on('end', this.#onEnd);
    this.socket.on('error', this.#onError);
    this.socket.on('close', this.#onClose);
    this.socket.on('drain', this.#onDrain);
  }

  /** Writes the request head left for the end of the turn (flushUnsent), unless the attempt has ended since. */
  flushHead(): void {
    const head = this.#unsent;
    this.#unsent = null;
    if (head !== null && this.phase === Phase.AWAIT_HEAD) this.socket.write(head, 'latin1');
  }

  /** Takes the next request on an idle connection. */
  assign(opts: DispatchOptions, handler: UpstreamHandler): void {
    this.#opts = opts;
    this.handler = handler;
    this.#begin();
  }

  /** Closes it now; a request on it fails with `err`. */
  destroy(err: Error): void {
    if (this.handler !== null) this.#fail(err);
    else this.#close();
  }

  // ---- the request ---------------------------------------------------------------------------------

  #begin(): void {
    const opts = this.#opts;
    const h = this.handler;
    if (opts === null || h === null || this.phase === Phase.CLOSED) return;
    this.#opts = null;
    this.parser.begin(opts.method === 'HEAD', this.forUpgrade);
    this.paused = false;
    this.active = false;
    this.#waitingDrain = false;
    this.phase = Phase.WRITING;
    this.since = this.#host.now;
    h.onConnect(this);
    // The handler may have aborted (its client left while it waited).
    if (this.handler !== h) return;
    const body = opts.body;
    const head = requestHead(opts.method, opts.path, opts.headers, body !== null, opts.upgrade ?? null, this.#host.address, this);
    const s = this.socket;
    if (body === null) {
      this.#bodyDone = true;
      this.phase = Phase.AWAIT_HEAD;
      this.#unsent = head;
      unsent.add(this);
      return;
    }
    // One write for the head and whatever body the source has at hand.
    s.cork();
    s.write(head, 'latin1');
    this.#body = body;
    this.#bodyDone = false;
    body.startBody(this);
    s.uncork();
  }

  writeBody(chunk: Uint8Array): boolean {
    if (this.#body === null || chunk.length === 0) return true;
    const s = this.socket;
    let ok: boolean;
    if (this.framing === BodyFraming.CHUNKED) {
      s.cork();
      s.write(chunkHeader(chunk.length), 'latin1');
      s.write(chunk);
      ok = s.write(CHUNK_END, 'latin1');
      s.uncork();
    } else {
      ok = s.write(chunk);
    }
    if (!ok && !this.#waitingDrain) {
      this.#waitingDrain = true;
      if (this.phase === Phase.WRITING) this.since = this.#host.now;
    }
    return ok;
  }

  endBody(): void {
    if (this.#body === null) return;
    this.#body = null;
    this.#bodyDone = true;
    if (this.framing === BodyFraming.CHUNKED) this.socket.write(LAST_CHUNK, 'latin1');
    if (this.phase === Phase.WRITING) {
      this.phase = Phase.AWAIT_HEAD;
      this.since = this.#host.now;
    }
  }

  abort(err?: Error): void {
    if (this.handler === null) return;
    this.parser.stop();
    this.#fail(err ?? new Error('aborted'));
  }

  resume(): void {
    if (!this.paused || this.handler === null) return;
    this.paused = false;
    // The body idle clock starts again: the pause was ours, not the endpoint's.
    this.since = this.#host.now;
    this.socket.resume();
  }

  // ---- the response ------------------------------------------------------------------------------

  /** The onread callback: false stops reading (backpressure) until resume(). */
  #read(n: number, buf: Buffer): boolean {
    this.#input(buf, 0, n);
    return !this.paused || this.phase !== Phase.BODY;
  }

  #input(buf: Buffer, start: number, end: number): void {
    if (this.handler === null) {
      // Bytes nobody asked for (on an idle connection): the endpoint and we disagree about framing.
      this.#close();
      return;
    }
    if (this.#unsent !== null) {
      // A "response" to a request not sent yet: the endpoint talks out of turn.
      this.#fail(new UpstreamError(UpstreamCode.malformed, 'malformed response: bytes before the request'));
      return;
    }
    this.active = true;
    const p = this.parser;
    const at = p.execute(buf, start, end);
    switch (p.state) {
      case ParseState.DONE:
        this.#complete(at < end);
        return;
      case ParseState.UPGRADED:
        this.#upgrade(buf, at, end);
        return;
      case ParseState.ERROR:
        this.#fail(
          p.unexpectedUpgrade
            ? new UpstreamError(UpstreamCode.unexpectedUpgrade, 'the endpoint switched protocols unasked')
            : new UpstreamError(UpstreamCode.malformed, `malformed response: ${p.error}`),
        );
        return;
      default:
      // Waiting for more, or STOPPED (aborted from a callback: already failed).
    }
  }

  onResponseHead(status: number, headers: string[]): void {
    if (this.parser.state === ParseState.UPGRADED) return; // #upgrade hands the head over
    const h = this.handler;
    if (h === null) return;
    this.phase = Phase.BODY;
    this.since = this.#host.now;
    if (!h.onHeaders(status, headers)) this.paused = true;
  }

  onResponseBody(buf: Buffer, start: number, end: number): void {
    const h = this.handler;
    if (h === null) return;
    // The read buffer is shared: the handler gets its own copy.
    const chunk = Buffer.allocUnsafe(end - start);
    buf.copy(chunk, 0, start, end);
    if (!h.onData(chunk)) this.paused = true;
  }

  /** The response is complete; `extra`: bytes followed it (no pipelining: the connection cannot be trusted). */
  #complete(extra: boolean): void {
    const h = this.handler!;
    this.handler = null;
    this.#stopBody();
    this.paused = false;
    this.served++;
    const p = this.parser;
    const host = this.#host;
    let idle = host.keepAliveMs;
    if (p.keepAliveHintMs >= 0) idle = Math.min(idle, p.keepAliveHintMs - KEEP_ALIVE_HINT_MARGIN_MS);
    // Reused only after a whole response with keep-alive semantics, a whole request, and time to be reused.
    const reuse = p.keepAlive && !extra && this.#bodyDone && !this.forUpgrade && idle > host.tickMs;
    if (reuse) {
      this.idleMs = idle;
      this.phase = Phase.IDLE;
      this.since = host.now;
    } else {
      this.#close();
    }
    h.onComplete();
    // onComplete may have closed the pool (the endpoint's last request) or destroyed this connection.
    if (reuse && this.phase === Phase.IDLE) host.released(this);
  }

  #upgrade(buf: Buffer, at: number, end: number): void {
    const h = this.handler!;
    this.handler = null;
    const s = this.socket;
    if (this.#onData !== null) s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('error', this.#onError);
    s.off('close', this.#onClose);
    s.off('drain', this.#onDrain);
    s.pause();
    if (end > at) s.unshift(Buffer.from(buf.subarray(at, end)));
    this.phase = Phase.UPGRADED;
    this.#host.removed(this);
    if (h.onUpgrade === undefined) {
      s.destroy();
      h.onError(new UpstreamError(UpstreamCode.unexpectedUpgrade, 'the endpoint switched protocols unasked'));
      return;
    }
    h.onUpgrade(this.parser.status, this.parser.headers, s);
  }

  // ---- socket events -----------------------------------------------------------------------------

  #drained(): void {
    this.#waitingDrain = false;
    if (this.phase === Phase.WRITING) this.since = this.#host.now;
    this.#body?.onBodyDrain();
  }

  /** The endpoint sent FIN: the end of a close-delimited body, or of the connection. */
  #ended(): void {
    if (this.handler === null || this.phase === Phase.CONNECTING) {
      this.#close();
      return;
    }
    if (this.parser.finish()) this.#complete(false);
    else this.#fail(this.#closedError());
  }

  #socketError(err: Error): void {
    if (this.handler !== null) this.#fail(err);
    else this.#close();
  }

  #socketClosed(): void {
    if (this.handler !== null) this.#fail(this.#closedError());
    else this.#close();
  }

  #closedError(): UpstreamError {
    return new UpstreamError(
      UpstreamCode.closed,
      this.parser.sawBytes
        ? 'the endpoint closed the connection mid-response'
        : `the endpoint closed the connection before responding (${this.served === 0 ? 'new' : 'reused'} connection)`,
    );
  }

  // ---- timeouts and ends -------------------------------------------------------------------------

  /** Called by the pool's sweep every tick: the phase's limit, checked against the coarse clock. */
  sweep(now: number): void {
    const t = this.#host.timeouts;
    const active = this.active;
    this.active = false;
    switch (this.phase) {
      case Phase.CONNECTING:
        if (now - this.since >= t.connectMs) this.#fail(new UpstreamError(UpstreamCode.connectTimeout, 'connect timed out'));
        return;
      case Phase.WRITING:
        // The body moves at the client's pace; only an endpoint that stops reading it is timed.
        if (this.#waitingDrain && now - this.since >= t.headersMs) {
          this.#fail(new UpstreamError(UpstreamCode.headersTimeout, 'the endpoint stopped reading the request'));
        }
        return;
      case Phase.AWAIT_HEAD:
        if (now - this.since >= t.headersMs) this.#fail(new UpstreamError(UpstreamCode.headersTimeout, 'no response head in time'));
        return;
      case Phase.BODY:
        if (this.paused) return;
        if (active) this.since = now;
        else if (now - this.since >= t.bodyIdleMs) this.#fail(new UpstreamError(UpstreamCode.bodyTimeout, 'the response body stalled'));
        return;
      case Phase.IDLE:
        if (now - this.since >= this.idleMs) this.#close();
        return;
      default:
    }
  }

  /** Whether an idle connection may still take a request now. */
  fresh(now: number): boolean {
    return this.phase === Phase.IDLE && now - this.since < this.idleMs;
  }

  #fail(err: Error): void {
    const h = this.handler;
    this.handler = null;
    this.#stopBody();
    this.#close();
    if (h !== null) h.onError(err);
  }

  #stopBody(): void {
    const b = this.#body;
    if (b === null) return;
    this.#body = null;
    b.stopBody();
  }

  #close(): void {
    if (this.phase === Phase.CLOSED || this.phase === Phase.UPGRADED) return;
    this.phase = Phase.CLOSED;
    this.#opts = null;
    this.#unsent = null;
    this.socket.destroy();
    this.#host.removed(this);
  }
}
