/**
 * The node:http front end (the native-free path): a keep-alive HTTP/1.1 server whose requests become Downstreams
 * for the proxy, and whose upgrade requests become UpgradeDownstreams over the raw socket.
 *
 * Listeners are module-level functions that find their Downstream through a symbol property on the request,
 * response or socket, so a request costs one wrapper object and no closures.
 *
 * node:http's parser refuses some malformed requests before any handler sees them (both Content-Length and
 * Transfer-Encoding, duplicate Content-Lengths, invalid header characters, headers past maxHeaderSize). Its default
 * answer is a bare `400 Bad Request` with no body; `clientError` here answers the same way as the proxy's own
 * checks (a short body saying why, `x-borealis-error`), and nothing of such a request is ever forwarded.
 */
import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { EndOfTurn } from './end-of-turn.js';
import type { Downstream, DownstreamSink, FrontEnd } from './downstream.js';
import type { Proxy } from './proxy.js';
import type { RefusalKind } from './types.js';
import { type UpgradeDownstream, proxyUpgrade } from './websocket.js';

export interface NodeFrontOptions {
  /** Time allowed to receive a request's headers (slowloris bound). */
  headersTimeoutMs?: number;
  /** Time allowed to receive a whole request, body included (bounds slow uploads). */
  requestTimeoutMs?: number;
  /** Idle keep-alive client connections are closed after this long. */
  keepAliveTimeoutMs?: number;
}

export const NODE_FRONT_DEFAULTS: Required<NodeFrontOptions> = {
  // Headers are a few hundred bytes: 15 s is generous for any real client and short for a slowloris.
  headersTimeoutMs: 15_000,
  // Node's default (5 min): a 1 GiB upload at ~4 MB/s still fits.
  requestTimeoutMs: 300_000,
  // Node's default; clients (and wrk) reuse connections well within it.
  keepAliveTimeoutMs: 5_000,
};

const kDown = Symbol('borealis.downstream');
type Tagged<T> = T & { [kDown]?: NodeDownstream | SocketDownstream };

function onReqData(this: Tagged<IncomingMessage>, chunk: Buffer): void {
  this[kDown]?.sink?.onBodyChunk(chunk);
}
function onReqEnd(this: Tagged<IncomingMessage>): void {
  this[kDown]?.sink?.onBodyEnd();
}
function onResDrain(this: Tagged<ServerResponse>): void {
  this[kDown]?.sink?.onDownstreamDrain();
}
function onResClose(this: Tagged<ServerResponse>): void {
  const d = this[kDown] as NodeDownstream | undefined;
  // 'close' also follows a normal end; only a response that did not finish means the client went away.
  if (d !== undefined && !this.writableFinished) d.clientGone();
}

/**
 * Client sockets with a response started in this turn stay corked until its end (end-of-turn.ts): a small
 * response's head and body leave in one write, back to back with the turn's other responses.
 */
const corked = new EndOfTurn<Socket>((socket) => socket.uncork());

class NodeDownstream implements Downstream {
  readonly method: string;
  readonly target: string;
  readonly rawHeaders: readonly string[];
  readonly remoteAddress: string;
  readonly scheme = 'http';
  headersSent = false;
  sink: DownstreamSink | null = null;
  readonly #req: Tagged<IncomingMessage>;
  readonly #res: Tagged<ServerResponse>;
  #reading = false;
  #close = false;
  #gone = false;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.method = req.method ?? 'GET';
    this.target = req.url ?? '/';
    this.rawHeaders = req.rawHeaders;
    this.remoteAddress = req.socket.remoteAddress ?? '';
    this.#req = req;
    this.#res = res;
  }

  attach(sink: DownstreamSink): void {
    this.sink = sink;
    this.#req[kDown] = this;
    this.#res[kDown] = this;
    this.#res.on('drain', onResDrain);
    this.#res.on('close', onResClose);
  }

  pauseBody(): void {
    if (this.#reading) this.#req.pause();
  }

  resumeBody(): void {
    if (!this.#reading) {
      this.#reading = true;
      this.#req.on('data', onReqData);
      this.#req.on('end', onReqEnd);
    }
    this.#req.resume();
  }

  writeHead(status: number, headers: readonly string[]): void {
    if (this.#gone || this.headersSent) return;
    this.headersSent = true;
    const res = this.#res;
    if (this.#close) res.shouldKeepAlive = false;
    const socket = res.socket;
    if (socket !== null && !socket.destroyed) {
      socket.cork();
      corked.add(socket);
    }
    res.writeHead(status, headers as string[]);
  }

  write(chunk: Uint8Array): boolean {
    if (this.#gone) return true;
    return this.#res.write(chunk);
  }

  end(): void {
    if (!this.#gone) this.#res.end();
  }

  abort(): void {
    this.#gone = true;
    this.#res.destroy();
  }

  closeAfterResponse(): void {
    this.#close = true;
    this.#res.shouldKeepAlive = false;
  }

  clientGone(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.sink?.onDownstreamAbort();
  }
}

function onSocketDrain(this: Tagged<Socket>): void {
  this[kDown]?.sink?.onDownstreamDrain();
}
function onSocketClose(this: Tagged<Socket>): void {
  const d = this[kDown] as SocketDownstream | undefined;
  if (d !== undefined && !d.finished) d.sink?.onDownstreamAbort();
}

/** An upgrade request's connection: responses are written as raw HTTP/1.1, and a 101 splices it to the endpoint. */
class SocketDownstream implements UpgradeDownstream {
  readonly method: string;
  readonly target: string;
  readonly rawHeaders: readonly string[];
  readonly remoteAddress: string;
  readonly scheme = 'http';
  headersSent = false;
  finished = false;
  sink: DownstreamSink | null = null;
  readonly #socket: Tagged<Socket>;
  readonly #head: Buffer;

  constructor(req: IncomingMessage, socket: Socket, head: Buffer) {
    this.method = req.method ?? 'GET';
    this.target = req.url ?? '/';
    this.rawHeaders = req.rawHeaders;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.#socket = socket;
    this.#head = head;
    // Until attach(), a client that goes away only needs its socket gone.
    socket.on('error', () => socket.destroy());
  }

  attach(sink: DownstreamSink): void {
    this.sink = sink;
    this.#socket[kDown] = this;
    this.#socket.on('drain', onSocketDrain);
    this.#socket.on('close', onSocketClose);
  }

  pauseBody(): void {}
  resumeBody(): void {}

  writeHead(status: number, headers: readonly string[]): void {
    if (this.headersSent) return;
    this.headersSent = true;
    // The connection closes after this response (it was an upgrade request): no keep-alive framing to get wrong.
    this.#socket.write(head(status, headers, status === 101 ? null : 'close'));
  }

  write(chunk: Uint8Array): boolean {
    return this.#socket.write(chunk);
  }

  end(): void {
    this.finished = true;
    this.#socket.end();
  }

  abort(): void {
    this.finished = true;
    this.#socket.destroy();
  }

  closeAfterResponse(): void {}

  splice(status: number, headers: readonly string[], upstream: Duplex, onClosed: () => void): void {
    const client = this.#socket;
    this.finished = true;
    client.off('close', onSocketClose);
    client.off('drain', onSocketDrain);
    this.headersSent = true;
    client.write(head(status, headers, null));
    if (this.#head.length > 0) upstream.write(this.#head);
    let open = 2;
    const closed = (): void => {
      client.destroy();
      upstream.destroy();
      if (--open === 0) onClosed();
    };
    upstream.on('error', () => undefined);
    client.on('error', () => undefined);
    upstream.once('close', closed);
    client.once('close', closed);
    upstream.pipe(client);
    client.pipe(upstream);
    client.setNoDelay(true);
  }
}

function head(status: number, headers: readonly string[], connection: string | null): string {
  let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (let i = 0; i < headers.length; i += 2) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
  if (connection !== null) s += `connection: ${connection}\r\n`;
  return `${s}\r\n`;
}

/** node:http's parse errors, as our refusals. */
function refusalOf(err: Error & { code?: string; reason?: string }): { status: number; kind: RefusalKind; reason: string } | null {
  const code = err.code ?? '';
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, kind: 'headers_too_large', reason: 'request headers too large' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, kind: 'bad_request', reason: 'the request took too long to arrive' };
  if (code.startsWith('HPE_')) {
    const why = err.reason ?? code;
    return { status: 400, kind: 'bad_request', reason: `malformed request: ${why}` };
  }
  return null;
}

export class NodeFront implements FrontEnd {
  readonly transport = 'node:http (native-free)';
  readonly #server: Server;
  readonly #proxy: Proxy;
  readonly #sockets = new Set<Socket>();

  constructor(proxy: Proxy, opts: NodeFrontOptions = {}) {
    const o = { ...NODE_FRONT_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
    this.#proxy = proxy;
    this.#server = createServer(
      {
        maxHeaderSize: proxy.limits.maxHeaderBytes,
        requestTimeout: o.requestTimeoutMs,
        headersTimeout: o.headersTimeoutMs,
        keepAliveTimeout: o.keepAliveTimeoutMs,
        // Latency over batching: responses are written as they arrive from endpoints.
        noDelay: true,
        // Leave duplicate headers apart: the proxy forwards raw headers, and checks duplicates itself.
        joinDuplicateHeaders: false,
      },
      (req, res) => proxy.handle(new NodeDownstream(req, res)),
    );
    // One past the limit, so the proxy sees an oversized header list as one (node would silently truncate it).
    this.#server.maxHeadersCount = proxy.limits.maxHeaders + 1;
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, headBytes: Buffer) => {
      proxyUpgrade(this.#proxy, new SocketDownstream(req, socket, headBytes));
    });
    this.#server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => this.#onClientError(err, socket as Socket));
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        const a = this.#server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  close(graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) {
        for (const s of this.#sockets) s.destroy();
        resolve();
        return;
      }
      const force = setTimeout(() => {
        for (const s of this.#sockets) s.destroy();
      }, graceMs);
      force.unref();
      this.#server.close(() => {
        clearTimeout(force);
        resolve();
      });
      this.#server.closeIdleConnections();
    });
  }

  #onClientError(err: Error & { code?: string }, socket: Socket): void {
    const r = refusalOf(err);
    // A response already under way on this connection (or a dead socket) cannot get a second one.
    const busy = (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;
    if (r === null || busy || !socket.writable) {
      socket.destroy();
      return;
    }
    this.#proxy.metrics.refused(r.kind);
    const body = `${r.status} ${STATUS_CODES[r.status]}: ${r.reason}\n`;
    socket.end(
      `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status]}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-borealis-error: ${r.kind}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
}
