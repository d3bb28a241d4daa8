/**
 * A request body as undici wants it (a Readable), fed by a Downstream's chunk callbacks with backpressure both
 * ways: undici reading (`_read`) resumes the client, a full buffer (`push` false) pauses it. Nothing is requested
 * from the client before undici starts writing the request, so when an attempt fails before that (a refused
 * connection), not one body byte has moved and the request can be retried on another endpoint with a fresh
 * BodyReadable over the same client.
 */
import { Readable } from 'node:stream';
import type { Downstream } from './downstream.js';

/** 64 KiB between the client socket and the endpoint socket: Node's default stream buffering for byte streams. */
const HIGH_WATER_BYTES = 64 * 1024;

export class BodyReadable extends Readable {
  readonly #down: Downstream;
  /** Chunks taken from the client into this readable. */
  received = 0;
  #ended = false;

  constructor(down: Downstream) {
    super({ highWaterMark: HIGH_WATER_BYTES });
    this.#down = down;
  }

  override _read(): void {
    this.#down.resumeBody();
  }

  /** A chunk from the client. */
  feed(chunk: Uint8Array): void {
    this.received++;
    if (!this.push(chunk)) this.#down.pauseBody();
  }

  finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.push(null);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // undici destroys the body when the attempt fails: stop the client until a retry (or the end) decides.
    this.#down.pauseBody();
    cb(err);
  }
}
