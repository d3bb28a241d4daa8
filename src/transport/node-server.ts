/**
 * HttpServer on `node:http` + `ws`: the native-free path (no compiler, no prebuilt binary). Routing, error
 * bodies and handshake checks are dispatch.ts'; this file only adapts node's request, upgrade and socket objects.
 */
import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import { CLOSE_GRACE_MS, DEFAULT_WS_MAX_PAYLOAD, DISCARD_FACTOR, type UpgradeRefusal, formatPeer, parseTarget, renderBody } from './dispatch.js';
import { ServerBase } from './server-base.js';
import type { HttpMethod, HttpRequest, HttpResponse, HttpServerOptions, ListenAddress, WsRoute, WsSocket, WsUpgradeRequest } from './types.js';

export class NodeHttpServer extends ServerBase {
  readonly transport = 'node';
  readonly #ws = new Map<string, { route: WsRoute; wss: WebSocketServer }>();
  readonly #server: Server;
  #address: ListenAddress | null = null;

  constructor(opts: HttpServerOptions = {}) {
    super(opts);
    this.#server = createServer((req, res) => void this.#onRequest(req, res));
    this.#server.on('upgrade', (req, socket) => this.#onUpgrade(req, socket));
  }

  get address(): ListenAddress | null {
    return this.#address;
  }

  websocket(path: string, route: WsRoute): void {
    const wss = new WebSocketServer({
      noServer: true,
      // Frames are small protobufs; compression would cost more CPU than it saves bytes.
      perMessageDeflate: false,
      maxPayload: route.maxPayloadBytes ?? DEFAULT_WS_MAX_PAYLOAD,
      handleProtocols: (offered) => {
        for (const p of route.protocols) if (offered.has(p)) return p;
        return false;
      },
    });
    this.#ws.set(path, { route, wss });
  }

  listen(address: ListenAddress): Promise<ListenAddress> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(address.port, address.host, () => {
        this.#server.off('error', onError);
        const a = this.#server.address() as AddressInfo;
        this.#address = { host: a.address, port: a.port };
        resolve(this.#address);
      });
    });
  }

  protected shutdown(): Promise<void> {
    return new Promise<void>((resolve) => {
      for (const { wss } of this.#ws.values()) {
        for (const c of wss.clients) c.close(1001, 'server closing');
        wss.close();
      }
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      // WebSockets that ignore the close handshake, and requests in flight, get a bounded grace.
      setTimeout(() => {
        for (const { wss } of this.#ws.values()) for (const c of wss.clients) c.terminate();
        this.#server.closeAllConnections();
      }, CLOSE_GRACE_MS).unref();
    });
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = parseTarget(req.url ?? '/');
    const method = req.method ?? 'GET';
    const r = this.dispatcher.resolve(method, path);
    if (r.kind === 'refuse') {
      this.#send(res, r.response);
      return;
    }
    try {
      const body = await this.#readBody(req);
      const request: HttpRequest = {
        method: method as HttpMethod,
        path,
        params: r.params,
        query,
        headers: req.headers as Record<string, string | undefined>,
        body,
        remoteAddress: addressOf(req.socket),
      };
      this.#send(res, await r.handler(request));
    } catch (err) {
      // Also what a response that cannot be rendered (a cyclic or BigInt json) becomes.
      this.#send(res, this.dispatcher.failure(err, method, path));
    }
  }

  #send(res: ServerResponse, r: HttpResponse): void {
    // An answer after close() began also closes its connection, so close() need not wait out the grace for it.
    if (this.closing && !res.headersSent) res.setHeader('Connection', 'close');
    send(res, r);
  }

  /** Reads the whole body, refusing (413) past the limit: by Content-Length up front, else as it streams in. */
  #readBody(req: IncomingMessage): Promise<Buffer> {
    const d = this.dispatcher;
    const limit = d.bodyLimit;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > limit) over = true;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) over = true;
        if (over) {
          chunks.length = 0;
          if (size > limit * DISCARD_FACTOR) {
            req.socket.destroy();
            reject(d.tooLarge());
          }
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => (over ? reject(d.tooLarge()) : resolve(Buffer.concat(chunks))));
      req.on('error', reject);
    });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex): void {
    const { path, query } = parseTarget(req.url ?? '/');
    const ep = this.#ws.get(path);
    const upgrade: WsUpgradeRequest = { path, query, headers: req.headers as Record<string, string | undefined> };
    const checked = this.dispatcher.checkUpgrade(ep?.route, this.closing, upgrade);
    if (checked.refusal !== undefined || !ep) {
      refuseUpgrade(socket, checked.refusal!);
      return;
    }
    ep.wss.handleUpgrade(req, socket, Buffer.alloc(0), (ws) => {
      ep.route.onOpen(adapt(ws, addressOf(req.socket)), upgrade);
    });
  }
}

function send(res: ServerResponse, r: HttpResponse): void {
  if (res.headersSent) return;
  const { body, contentType } = renderBody(r);
  res.statusCode = r.status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  res.end(body);
}

function refuseUpgrade(socket: Duplex, r: UpgradeRefusal): void {
  const reason = STATUS_CODES[r.status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${r.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(r.body)}\r\nConnection: close\r\n\r\n${r.body}`,
  );
}

function adapt(ws: WebSocket, remoteAddress: string): WsSocket {
  let closed = false;
  const closers: ((code: number, reason: string) => void)[] = [];
  ws.on('close', (code, reason) => {
    if (closed) return;
    closed = true;
    for (const c of closers) c(code, reason.toString());
  });
  // An 'error' (bad frame, oversized payload) is followed by 'close'; without a listener it would throw.
  ws.on('error', () => undefined);
  return {
    protocol: ws.protocol,
    remoteAddress,
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send(bytes, onWritten) {
      if (closed || ws.readyState !== ws.OPEN) return;
      ws.send(bytes, { binary: true }, onWritten && ((err) => (err ? undefined : onWritten())));
    },
    sendText(text, onWritten) {
      if (closed || ws.readyState !== ws.OPEN) return;
      ws.send(text, { binary: false }, onWritten && ((err) => (err ? undefined : onWritten())));
    },
    close(code, reason) {
      if (ws.readyState === ws.CLOSED || ws.readyState === ws.CLOSING) return;
      ws.close(code, reason);
    },
    onMessage(cb) {
      ws.on('message', (data, isBinary) => cb(toBytes(data), isBinary));
    },
    onClose(cb) {
      closers.push(cb);
    },
  };
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return new Uint8Array(data);
}

function addressOf(socket: Socket): string {
  return formatPeer(socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
}
