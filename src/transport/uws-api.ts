/**
 * The part of uWebSockets.js' native API that uws-server.ts uses, declared here rather than imported from the
 * package's typings: the package is an optional dependency, and the typecheck must not need it installed.
 * (Shapes as in its docs/index.d.ts, v20.30.)
 */

/** A native listen socket (opaque). */
export type UwsListenSocket = object;
/** A native socket context, handed to `upgrade` and passed back to `res.upgrade`. */
export type UwsContext = object;

export interface UwsModule {
  App(): UwsApp;
  us_listen_socket_close(listenSocket: UwsListenSocket): void;
  us_socket_local_port(listenSocket: UwsListenSocket): number;
  /** Listen option: fail rather than share the port (SO_REUSEPORT) with another process. */
  readonly LIBUS_LISTEN_EXCLUSIVE_PORT: number;
  /** Compression option: none. */
  readonly DISABLED: number;
}

export interface UwsApp {
  any(pattern: string, handler: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  ws<T>(pattern: string, behavior: UwsBehavior<T>): UwsApp;
  listen(host: string, port: number, options: number, cb: (listenSocket: UwsListenSocket | false) => void): UwsApp;
  /** Closes every socket of the app (listen sockets, HTTP connections, WebSockets) at once, without a handshake. */
  close(): UwsApp;
}

/** Valid only during the handler call: everything needed later must be copied out before returning. */
export interface UwsRequest {
  getHeader(lowerCaseKey: string): string;
  getUrl(): string;
  getCaseSensitiveMethod(): string;
  /** The raw query string (after `?`), or undefined when the target has none. */
  getQuery(): string | undefined;
  /** Every header, names lower-cased, duplicates as separate calls. */
  forEach(cb: (key: string, value: string) => void): void;
}

/** Valid until `onAborted` fires or `end`/`endWithoutBody`/`close` succeeds. */
export interface UwsResponse {
  writeStatus(status: string): UwsResponse;
  writeHeader(key: string, value: string): UwsResponse;
  /** Ends the response (Content-Length is written by uWS); `closeConnection` adds `Connection: close` and closes. */
  end(body?: string | Uint8Array, closeConnection?: boolean): UwsResponse;
  /** Ends the response without a body or Content-Length (v20.30: called with a length, it sends nothing). */
  endWithoutBody(): UwsResponse;
  /** Closes the connection at once (onAborted runs). */
  close(): UwsResponse;
  /** Must be attached before the handler returns unless the response was ended in it. */
  onAborted(handler: () => void): UwsResponse;
  /** `chunk` is neutered when the callback returns: copy it. */
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
  /** Writes from outside a uWS callback must be made in here (one syscall, and uWS insists). */
  cork(cb: () => void): UwsResponse;
  getRemoteAddressAsText(): ArrayBuffer;
  /** The peer's IP as 4 (IPv4) or 16 (IPv6) bytes; a getpeername() call each time. */
  getRemoteAddress(): ArrayBuffer;
  upgrade<T>(userData: T, secWebSocketKey: string, secWebSocketProtocol: string, secWebSocketExtensions: string, context: UwsContext): void;
}

/** Valid from `open` until `close` (which `end` runs synchronously); any call after that throws. */
export interface UwsWebSocket<T> {
  /** 1 sent, 0 buffered (backpressure), 2 dropped (only with a maxBackpressure, which we never set). */
  send(message: string | Uint8Array, isBinary?: boolean, compress?: boolean): number;
  /** User-space bytes not yet handed to the kernel. */
  getBufferedAmount(): number;
  /** Close frame, FIN, and the close handler at once. */
  end(code?: number, shortMessage?: string): void;
  getRemoteAddressAsText(): ArrayBuffer;
  getUserData(): T;
}

export interface UwsBehavior<T> {
  maxPayloadLength?: number;
  /** Seconds without traffic before uWS closes the socket; 0 disables. */
  idleTimeout?: number;
  /** Bytes of backpressure above which sends are dropped; 0 means never drop. */
  maxBackpressure?: number;
  compression?: number;
  sendPingsAutomatically?: boolean;
  upgrade?: (res: UwsResponse, req: UwsRequest, context: UwsContext) => void;
  open?: (ws: UwsWebSocket<T>) => void;
  message?: (ws: UwsWebSocket<T>, message: ArrayBuffer, isBinary: boolean) => void;
  drain?: (ws: UwsWebSocket<T>) => void;
  close?: (ws: UwsWebSocket<T>, code: number, message: ArrayBuffer) => void;
}
