/**
 * What a pool's caller provides and gets: undici's raw dispatch-handler shape (onConnect, onHeaders, onData,
 * onComplete, onError, onUpgrade), simplified where undici's generality cost allocations: headers come as latin1
 * strings `[name, value, ...]` (the proxy forwards strings anyway), the abort and resume functions are one
 * control object (the connection itself, not closures per request), and a request body is pushed by its source
 * rather than pulled from a Readable.
 */
import type { Duplex } from 'node:stream';

export interface DispatchOptions {
  method: string;
  /** Origin-form target (path and query). */
  path: string;
  /** `[name, value, ...]`, hop-by-hop headers already removed. A Content-Length here frames the body as is. */
  headers: readonly string[];
  /** The request body, or null. Without a Content-Length in `headers` it is sent chunked. */
  body: BodySource | null;
  /** The protocol to switch to (an Upgrade request): a 101 hands the socket over through onUpgrade. */
  upgrade?: string | null;
}

/**
 * Aborts or resumes the request it was handed for. Valid from onConnect until the request's onComplete, onError
 * or onUpgrade: the same object serves the connection's next request afterwards, so a handler must drop it then.
 */
export interface RequestControl {
  /** Ends the attempt: the connection is destroyed (never reused) and onError(err) follows at once. */
  abort(err?: Error): void;
  /** Reads the response body again after onData (or onHeaders) returned false. */
  resume(): void;
}

export interface UpstreamHandler {
  /** A connection took the request; its head is about to be written. */
  onConnect(control: RequestControl): void;
  /**
   * The final response's status and headers (interim 1xx responses are skipped). `headers` is only valid during
   * the call (the connection reuses the array). Returning false pauses the body until control.resume().
   */
  onHeaders(status: number, headers: readonly string[]): boolean;
  /** A piece of the (de-chunked) body; the handler owns it. false pauses until control.resume(). */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** The attempt failed; the error's `code` says why (errors.ts, or node:net's). Called at most once. */
  onError(err: Error): void;
  /**
   * A 101 to a request with `upgrade`: the socket is the handler's now, paused, with any bytes read past the
   * response head put back in front of its stream (`unshift`); pipe() or resume() starts it.
   */
  onUpgrade?(status: number, headers: readonly string[], socket: Duplex): void;
}

/** Takes the request body's chunks once the request head is written. */
export interface BodySink {
  /** false: stop until the source's onBodyDrain(). */
  writeBody(chunk: Uint8Array): boolean;
  endBody(): void;
}

/**
 * A request body pushed by its owner. Nothing is asked of it before the connection is up and the head written, so
 * an attempt that fails to connect has not consumed a byte and can be retried elsewhere with the same source.
 */
export interface BodySource {
  /** Start delivering to `sink` (until endBody); `sink` is valid until the attempt ends. */
  startBody(sink: BodySink): void;
  /** The sink took what was written: more may come. */
  onBodyDrain(): void;
  /** The attempt ended (either way) before the body was all written: stop delivering, the sink is gone. */
  stopBody(): void;
}

/** What the proxy holds per endpoint. */
export interface UpstreamPool {
  dispatch(opts: DispatchOptions, handler: UpstreamHandler): void;
  /** No new requests; the ones queued or in flight finish, then every connection closes. */
  close(): Promise<void>;
  /** Every connection closes now; queued and in-flight requests fail. */
  destroy(): Promise<void>;
}
