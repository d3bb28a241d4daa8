/**
 * The parts of uWebSockets.js' native API the balancer's front end uses beyond what src/transport/uws-api.ts
 * declares (streaming writes, body throttling, shared-port listening), declared here for the same reason: the
 * package is an optional dependency, and the typecheck must not need it. Checked against the v20.30 binary.
 */
import type { UwsApp, UwsContext, UwsListenSocket, UwsModule, UwsRequest, UwsResponse, UwsWebSocket } from '../transport/uws-api.js';

export type { UwsContext, UwsListenSocket, UwsModule, UwsRequest, UwsWebSocket };

/** Listen option 0: share the port with other listeners that also ask (SO_REUSEPORT), e.g. our other threads. */
export const LIBUS_LISTEN_DEFAULT = 0;

export interface UwsStreamingResponse extends UwsResponse {
  /** Stops reading the request body from the socket (throttle); resume() starts again. */
  pause(): void;
  resume(): void;
  /**
   * Chunked transfer-encoding: writes a chunk, buffering in user space whatever the kernel does not take; false
   * means "backpressure: wait for onWritable". (uWS drains that buffer only on the next write or end.)
   */
  write(chunk: Uint8Array | string): boolean;
  /**
   * Writes `chunk` of a body of `totalSize` bytes (Content-Length written on the first call) without buffering:
   * `ok` false means part of it was not written (retry the rest from getWriteOffset() in onWritable); `done` that
   * the whole body went out and the response is finished.
   */
  tryEnd(chunk: Uint8Array | string, totalSize: number): [ok: boolean, done: boolean];
  /** Body bytes written so far. */
  getWriteOffset(): number;
  /** Called when the socket is writable again, with the body offset; return false to be called again. */
  onWritable(handler: (offset: number) => boolean): UwsStreamingResponse;
}

export interface UwsSharedApp extends UwsApp {
  any(pattern: string, handler: (res: UwsStreamingResponse, req: UwsRequest) => void): UwsSharedApp;
}

export interface UwsSharedModule extends UwsModule {
  App(): UwsSharedApp;
}

export interface UwsClosableWebSocket<T> extends UwsWebSocket<T> {
  /** Cuts the connection without a close frame (the peer sees 1006); the close handler runs at once. */
  close(): void;
}
