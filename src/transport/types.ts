/**
 * The transport interface: what src/api needs from an HTTP + WebSocket server, and nothing more, so the
 * `node:http` + `ws` implementation (node-server.ts, the native-free path) and the uWebSockets.js one
 * (uws-server.ts) are interchangeable. Routing, body limits and error bodies live in dispatch.ts once; the routes
 * only map requests to results.
 */
import type { ErrorCode } from '../api/errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: HttpMethod;
  /** The path without the query string (`/v1/jobs/web`). */
  path: string;
  /** `:name` segments of the matched route, decoded. */
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** Lower-cased header names. */
  headers: Readonly<Record<string, string | undefined>>;
  /** The whole body (empty for GET/DELETE), already bounded by the server's body limit. */
  body: Buffer;
  remoteAddress: string;
}

/** `json` is serialised with Content-Type application/json; `text` is sent as is with `contentType`. */
export type HttpResponse =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; text: string; contentType: string; headers?: Record<string, string> };

export type HttpHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

/**
 * One accepted WebSocket, transport-neutral. Contract (the one AgentConnection asks for): messages in arrival
 * order; `onClose` fires once, whoever closed; `send` after close is a silent no-op.
 */
export interface WsSocket {
  /** The subprotocol the server selected. */
  readonly protocol: string;
  readonly remoteAddress: string;
  /** Bytes queued in user space (not yet handed to the kernel): the backpressure signal for streams. */
  readonly bufferedAmount: number;
  /** A binary frame. `onWritten` runs once the frame has been handed to the kernel (not if the socket closed first). */
  send(bytes: Uint8Array, onWritten?: () => void): void;
  /** A text frame (UTF-8). */
  sendText(text: string, onWritten?: () => void): void;
  close(code: number, reason: string): void;
  onMessage(cb: (bytes: Uint8Array, isBinary: boolean) => void): void;
  onClose(cb: (code: number, reason: string) => void): void;
}

export interface WsRoute {
  /** Subprotocols the endpoint speaks; an upgrade offering none of them is refused with 400 before the handshake. */
  protocols: readonly string[];
  /**
   * Frames above this are refused (the socket is closed with 1009). On uWebSockets.js a frame more than 64 KiB
   * (or the limit again, if larger) past it is cut without a close frame: the client sees 1006.
   */
  maxPayloadBytes?: number;
  /**
   * Checks the upgrade request before the handshake (after the subprotocol check): a BorealisError thrown here
   * refuses it with that error's HTTP status and `{code, message}` body, so a bad query never opens a socket.
   */
  accept?(req: WsUpgradeRequest): void;
  onOpen(socket: WsSocket, req: WsUpgradeRequest): void;
}

export interface WsUpgradeRequest {
  path: string;
  query: URLSearchParams;
  headers: Readonly<Record<string, string | undefined>>;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** The error body every failure gets, whatever produced it (route, router or transport). */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  problems?: { path: string; message: string }[];
}

/** Which server implements HttpServer: uWebSockets.js (native) or `node:http` + `ws` (native-free). */
export type TransportKind = 'uws' | 'node';

export interface HttpServer {
  readonly transport: TransportKind;
  /** Registers a route; `path` segments starting with `:` are parameters (`/v1/jobs/:name`). */
  route(method: HttpMethod, path: string, handler: HttpHandler): void;
  /** Registers a WebSocket endpoint at an exact path (GET + Upgrade). */
  websocket(path: string, route: WsRoute): void;
  listen(address: ListenAddress): Promise<ListenAddress>;
  /** The bound address once listening (port resolved when 0 was asked). */
  readonly address: ListenAddress | null;
  /** Stops accepting, closes open WebSockets (1001) and idle keep-alive connections. Idempotent. */
  close(): Promise<void>;
}

export interface HttpServerOptions {
  /**
   * `auto` (the default): uWebSockets.js when its native binary loads, else `node:http`; `uws` insists on the
   * native server (an error when it cannot load); `node` is the native-free path. $BOREALIS_NATIVE (0 or 1)
   * decides `auto` the same way.
   */
  transport?: 'auto' | TransportKind;
  /** Request bodies above this get 413 BRL_ERR_PAYLOAD_TOO_LARGE. */
  bodyLimitBytes?: number;
  /** Called for a handler that threw something other than a BorealisError (the client gets a 500). */
  onInternalError?: (err: unknown, req: { method: string; path: string }) => void;
}

/** 1 MiB: a 10,000-instance job spec with env and constraints is a few KiB; anything near this is a mistake. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** Where the master listens unless told otherwise (Mesos' port). */
export const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 5050 };
