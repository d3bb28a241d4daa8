/**
 * HttpServer on `node:http` + `ws`: the native-free path (no compiler, no prebuilt binary), and the default until
 * the uWebSockets.js server lands behind the same interface.
 */
import { type IncomingMessage, STATUS_CODES, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import { BorealisError, ErrorCodes, isBorealisError } from '../api/errors.js';
import { Router } from './router.js';
import {
  DEFAULT_BODY_LIMIT_BYTES,
  type ErrorBody,
  type HttpHandler,
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  type HttpServer,
  type HttpServerOptions,
  type ListenAddress,
  type WsRoute,
  type WsSocket,
  type WsUpgradeRequest,
} from './types.js';

const METHODS = new Set<string>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
/**
 * An oversized body is read and discarded up to this multiple of the limit before the 413 goes out, so an
 * ordinary client (which writes the whole body before reading) sees the response rather than a reset; past it
 * the connection is simply closed.
 */
const DISCARD_FACTOR = 8;
/** Agent frames are small protobufs; 4 MiB bounds a Register that lists many thousands of tasks. */
const DEFAULT_WS_MAX_PAYLOAD = 4 * 1024 * 1024;

export class NodeHttpServer implements HttpServer {
  readonly #router = new Router();
  readonly #ws = new Map<string, { route: WsRoute; wss: WebSocketServer }>();
  readonly #server: Server;
  readonly #bodyLimit: number;
  readonly #onInternalError: (err: unknown, req: { method: string; path: string }) => void;
  #address: ListenAddress | null = null;
  #closing: Promise<void> | null = null;

  constructor(opts: HttpServerOptions = {}) {
    const limit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
    if (!Number.isInteger(limit) || limit <= 0) throw new TypeError(`bodyLimitBytes must be a positive integer, got ${limit}`);
    this.#bodyLimit = limit;
    this.#onInternalError = opts.onInternalError ?? (() => undefined);
    this.#server = createServer((req, res) => void this.#onRequest(req, res));
    this.#server.on('upgrade', (req, socket) => this.#onUpgrade(req, socket));
  }

  get address(): ListenAddress | null {
    return this.#address;
  }

  route(method: HttpMethod, path: string, handler: HttpHandler): void {
    this.#router.add(method, path, handler);
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

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
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
      }, 1_000).unref();
    });
    return this.#closing;
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    try {
      const m = METHODS.has(method) ? this.#router.match(method, path) : this.#router.match('', path);
      if (m.kind === 'none') {
        throw new BorealisError(ErrorCodes.NOT_FOUND, `no route ${method} ${path}`);
      }
      if (m.kind === 'method') {
        const allow = [...new Set(m.allow)].join(', ');
        res.setHeader('Allow', allow);
        throw new BorealisError(ErrorCodes.METHOD_NOT_ALLOWED, `${method} is not allowed on ${path} (allowed: ${allow})`);
      }
      const body = await this.#readBody(req);
      const request: HttpRequest = {
        method: method as HttpMethod,
        path,
        params: m.params,
        query: url.searchParams,
        headers: req.headers as Record<string, string | undefined>,
        body,
        remoteAddress: addressOf(req.socket),
      };
      send(res, await m.handler(request));
    } catch (err) {
      if (!isBorealisError(err)) this.#onInternalError(err, { method, path });
      const e = isBorealisError(err) ? err : new BorealisError(ErrorCodes.INTERNAL, 'internal error');
      if (e.code === ErrorCodes.PAYLOAD_TOO_LARGE) res.setHeader('Connection', 'close');
      send(res, { status: e.httpStatus, json: e.toJSON() satisfies ErrorBody });
    }
  }

  /** Reads the whole body, refusing (413) past the limit: by Content-Length up front, else as it streams in. */
  #readBody(req: IncomingMessage): Promise<Buffer> {
    const tooLarge = (): BorealisError =>
      new BorealisError(ErrorCodes.PAYLOAD_TOO_LARGE, `request body exceeds the limit of ${this.#bodyLimit} bytes`);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.#bodyLimit) over = true;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.#bodyLimit) over = true;
        if (over) {
          chunks.length = 0;
          if (size > this.#bodyLimit * DISCARD_FACTOR) {
            req.socket.destroy();
            reject(tooLarge());
          }
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => (over ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
      req.on('error', reject);
    });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const ep = this.#ws.get(path);
    if (!ep || this.#closing) {
      refuseUpgrade(socket, ep ? 503 : 404, ep ? ErrorCodes.CLOSED : ErrorCodes.NOT_FOUND, ep ? 'server closing' : `no WebSocket endpoint at ${path}`);
      return;
    }
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (!ep.route.protocols.some((p) => offered.includes(p))) {
      refuseUpgrade(
        socket,
        400,
        ErrorCodes.PROTOCOL,
        `subprotocol must be one of ${ep.route.protocols.join(', ')} (offered: ${offered.length > 0 ? offered.join(', ') : 'none'})`,
      );
      return;
    }
    const upgrade: WsUpgradeRequest = { path, query: url.searchParams, headers: req.headers as Record<string, string | undefined> };
    if (ep.route.accept) {
      try {
        ep.route.accept(upgrade);
      } catch (err) {
        if (!isBorealisError(err)) this.#onInternalError(err, { method: 'GET', path });
        const e = isBorealisError(err) ? err : new BorealisError(ErrorCodes.INTERNAL, 'internal error');
        refuseUpgrade(socket, e.httpStatus, e.code, e.message);
        return;
      }
    }
    ep.wss.handleUpgrade(req, socket, Buffer.alloc(0), (ws) => {
      ep.route.onOpen(adapt(ws, addressOf(req.socket)), upgrade);
    });
  }
}

function send(res: ServerResponse, r: HttpResponse): void {
  if (res.headersSent) return;
  const body = 'json' in r ? JSON.stringify(r.json) : r.text;
  res.statusCode = r.status;
  res.setHeader('Content-Type', 'json' in r ? 'application/json; charset=utf-8' : r.contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  res.end(body);
}

/** A refused handshake gets a plain HTTP response with the usual error body, then the socket closes. */
function refuseUpgrade(socket: Duplex, status: number, code: BorealisError['code'], message: string): void {
  const body = JSON.stringify({ code, message });
  const reason = STATUS_CODES[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
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
  const host = socket.remoteAddress ?? 'unknown';
  return host.includes(':') ? `[${host}]:${socket.remotePort ?? 0}` : `${host}:${socket.remotePort ?? 0}`;
}
