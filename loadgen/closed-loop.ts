/**
 * The closed loop: connections × pipelining requests outstanding, each slot sending its next request when the
 * previous one settles, and latency measured from the actual send. This is what wrk measures, and it is blind to
 * stalls by design: while the server stalls, no requests are sent, so only one per slot records the stall.
 */
import type { Engine, Sender } from './engine.js';

export class ClosedLoop implements Engine {
  readonly #run: Sender;
  readonly #slots: number;
  readonly #warmupMs: number;
  #measureStart = 0;
  #running = false;
  /** Slots whose request failed, refilled on the next turn of the event loop (see settled). */
  #refill = 0;
  #immediate: NodeJS.Immediate | null = null;
  readonly queued = 0;
  readonly maxLagMs = 0;
  readonly backlog = 0;

  constructor(run: Sender, o: { slots: number; warmupMs: number }) {
    this.#run = run;
    this.#slots = o.slots;
    this.#warmupMs = o.warmupMs;
  }

  start(t0: number): void {
    this.#measureStart = t0 + this.#warmupMs;
    this.#running = true;
    for (let i = 0; i < this.#slots; i++) this.#send();
  }

  stop(): void {
    this.#running = false;
    this.#refill = 0;
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#immediate = null;
  }

  /**
   * A response frees its slot for the next request at once. A failure waits one event-loop turn: a refused
   * connection fails in microseconds, and a failure can also come synchronously from inside dispatch, where
   * sending again would recurse.
   */
  settled(failed: boolean): void {
    if (!this.#running) return;
    if (!failed) {
      this.#send();
      return;
    }
    this.#refill++;
    if (this.#immediate === null) this.#immediate = setImmediate(this.#doRefill);
  }

  abandon(): number {
    this.stop();
    return 0;
  }

  readonly #doRefill = (): void => {
    this.#immediate = null;
    const n = this.#refill;
    this.#refill = 0;
    for (let i = 0; i < n && this.#running; i++) this.#send();
  };

  #send(): void {
    const now = performance.now();
    this.#run.send(now, now >= this.#measureStart);
  }
}
