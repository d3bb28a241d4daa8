/**
 * The run's keep-alive connections: one undici Client each (a Pool would scan its clients on every dispatch), and a
 * FIFO ring of the ones with room for another request, so picking is O(1) and successive requests spread over every
 * connection rather than piling onto the most recently freed one.
 */
import { Client, type Dispatcher } from 'undici';

export interface ConnectionOptions {
  origin: string;
  connections: number;
  pipelining: number;
  timeoutMs: number;
}

export class Connections {
  readonly #clients: Client[];
  readonly #pipelining: number;
  /** Outstanding requests per connection. */
  readonly #load: Int32Array;
  /** Ring of connection indices whose load is below pipelining; each appears at most once. */
  readonly #ready: Int32Array;
  #head = 0;
  #size = 0;
  /** Round-robin cursor for requests sent while every connection is full (they wait in that connection's queue). */
  #overflow = 0;

  constructor(o: ConnectionOptions) {
    this.#pipelining = o.pipelining;
    this.#load = new Int32Array(o.connections);
    this.#ready = new Int32Array(o.connections);
    this.#clients = [];
    for (let i = 0; i < o.connections; i++) {
      // Clients connect on their first request; every timeout is the run's --timeout.
      this.#clients.push(
        new Client(o.origin, {
          pipelining: o.pipelining,
          connectTimeout: o.timeoutMs,
          headersTimeout: o.timeoutMs,
          bodyTimeout: o.timeoutMs,
        }),
      );
      this.#push(i);
    }
  }

  /** Whether some connection has room (otherwise `dispatch` queues behind a busy one). */
  get hasRoom(): boolean {
    return this.#size > 0;
  }

  /** Sends on the next connection with room, noting it in `handler.connection` for `release` when the request settles. */
  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler & { connection: number }): void {
    let c: number;
    if (this.#size > 0) {
      c = this.#ready[this.#head]!;
      this.#head = this.#head + 1 === this.#ready.length ? 0 : this.#head + 1;
      this.#size--;
      if (++this.#load[c]! < this.#pipelining) this.#push(c);
    } else {
      c = this.#overflow;
      this.#overflow = c + 1 === this.#clients.length ? 0 : c + 1;
      this.#load[c]!++;
    }
    handler.connection = c;
    this.#clients[c]!.dispatch(opts, handler);
  }

  release(c: number): void {
    if (this.#load[c]-- === this.#pipelining) this.#push(c);
  }

  /** Waits for outstanding requests, then closes every connection. */
  async close(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.close()));
  }

  /** Fails every outstanding request (each handler's onError runs) and closes every connection now. */
  async destroy(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.destroy()));
  }

  #push(c: number): void {
    let tail = this.#head + this.#size;
    if (tail >= this.#ready.length) tail -= this.#ready.length;
    this.#ready[tail] = c;
    this.#size++;
  }
}
