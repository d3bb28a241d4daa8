/**
 * A request body pushed from a Downstream to the attempt's upstream connection, with backpressure both ways: a
 * write the connection cannot take at once pauses the client, the connection's drain resumes it. Nothing is
 * requested from the client before the connection is up and the request head written (startBody), so when an
 * attempt fails before that (a refused connection), not one body byte has moved and the request can be retried on
 * another endpoint with the same RequestBody.
 */
import type { Downstream } from './downstream.js';
import type { BodySink, BodySource } from './http1/contract.js';

export class RequestBody implements BodySource {
  readonly #down: Downstream;
  /** Chunks taken from the client (by any attempt): once one has, the body cannot be sent again. */
  received = 0;
  /** The client's body ended. */
  ended = false;
  #sink: BodySink | null = null;

  constructor(down: Downstream) {
    this.#down = down;
  }

  startBody(sink: BodySink): void {
    this.#sink = sink;
    if (this.ended) sink.endBody();
    else this.#down.resumeBody();
  }

  onBodyDrain(): void {
    if (this.#sink !== null) this.#down.resumeBody();
  }

  stopBody(): void {
    // The attempt ended: hold the client until a retry (or the end) decides.
    this.#sink = null;
    this.#down.pauseBody();
  }

  /** A chunk from the client (dropped when no attempt takes it: that attempt has failed, and no retry may follow). */
  feed(chunk: Uint8Array): void {
    this.received++;
    const sink = this.#sink;
    if (sink !== null && !sink.writeBody(chunk)) this.#down.pauseBody();
  }

  finish(): void {
    if (this.ended) return;
    this.ended = true;
    const sink = this.#sink;
    if (sink !== null) {
      this.#sink = null;
      sink.endBody();
    }
  }
}
