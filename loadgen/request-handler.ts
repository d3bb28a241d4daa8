/**
 * The handler undici calls back for one request, reused for request after request (the run keeps a free list), so
 * the generator allocates no handler, closure or promise per request.
 *
 * It implements undici's callback-style handler (onConnect/onHeaders/onData/onComplete/onError), typed deprecated
 * in undici 7 but still its native shape: a handler with the newer onRequestStart/onResponse* methods gets wrapped
 * per request in an adapter that also parses every response's headers into an object, which is the very cost a
 * load generator must not pay. The status code and body length are all it reads.
 */
import type { Dispatcher } from 'undici';

/** Who hears that a request settled; `err` is null for a complete response (whatever its status). */
export interface Settler {
  settle(handler: RequestHandler, err: Error | null): void;
}

export class RequestHandler implements Dispatcher.DispatchHandler {
  /** performance.now() latency is measured from: the intended send time (open loop) or the actual send (closed). */
  startedAt = 0;
  /** False during the warmup: the request is sent and settled but not counted. */
  measured = false;
  /** Index of the connection it went out on (set by Connections.dispatch). */
  connection = 0;
  /** performance.now() of the dispatch: the run's timeout sweep measures from here. */
  sentAt = 0;
  /** Index in the run's list of outstanding requests (swap-removed when it settles). */
  slot = -1;
  status = 0;
  bytes = 0;
  readonly #settler: Settler;
  /** undici's abort for this request, once it is written to its connection. */
  #abort: ((err?: Error) => void) | null = null;

  constructor(settler: Settler) {
    this.#settler = settler;
  }

  reset(startedAt: number, sentAt: number, measured: boolean): void {
    this.startedAt = startedAt;
    this.sentAt = sentAt;
    this.measured = measured;
    this.#abort = null;
    this.status = 0;
    this.bytes = 0;
  }

  /**
   * Fails the request with `err` (its onError runs, synchronously). A request still waiting for its connection has
   * no abort yet: its connect timeout, or the run's drain deadline, ends it instead.
   */
  expire(err: Error): void {
    const abort = this.#abort;
    if (abort === null) return;
    this.#abort = null;
    abort(err);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
  }

  /** Called again after a 1xx interim response: the final status wins. */
  onHeaders(statusCode: number): boolean {
    this.status = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return true;
  }

  onComplete(): void {
    this.#settler.settle(this, null);
  }

  onError(err: Error): void {
    this.#settler.settle(this, err);
  }
}
