/**
 * The open loop: request i is due at t0 + i/rate whatever happened to the ones before it, and its latency runs from
 * that intended time to its completion, never from when it was actually sent. A stall in the server (or in this
 * process) therefore shows up in every request scheduled during it, as a real user arriving at a fixed rate would
 * see it — Gil Tene's correction for coordinated omission, by construction rather than by back-filling samples.
 *
 * One pump sends every request that is due, then waits for the next (see #arm: a timer, a completion, or a
 * setImmediate spin). It catches up after any delay instead of skipping, so when the generator itself falls behind,
 * its lag lands in the latencies and in maxLagMs rather than hiding.
 */
import type { Engine, Sender } from './engine.js';

export interface OpenLoopOptions {
  rate: number;
  warmupMs: number;
  durationMs: number;
  maxInFlight: number;
}

/** Re-read the clock every this many sends within one burst: a catch-up burst can take milliseconds. */
const CLOCK_EVERY = 64;

/** How many requests are due strictly before `ms` at `rate` (the epsilon keeps 0.1 + 0.2-style rounding from adding one). */
function countBefore(ms: number, rate: number): number {
  return Math.ceil((ms * rate) / 1000 - 1e-9);
}

export class OpenLoop implements Engine {
  readonly #run: Sender;
  readonly #intervalMs: number;
  readonly #maxInFlight: number;
  /** Index of the first request in the measured window. */
  readonly #firstMeasured: number;
  /** One past the last index scheduled (the window's end, or an early stop). */
  #end: number;
  #next = 0;
  /** The schedule's origin; NaN until start(). */
  #t0 = Number.NaN;
  /** Requests below this index were due while the in-flight bound held them back. */
  #waitMark = 0;
  /** The in-flight bound stopped the pump with requests due; the next completion resumes it. */
  #blocked = false;
  #pumping = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  queued = 0;
  maxLagMs = 0;

  constructor(run: Sender, o: OpenLoopOptions) {
    this.#run = run;
    this.#intervalMs = 1000 / o.rate;
    this.#maxInFlight = o.maxInFlight;
    this.#firstMeasured = countBefore(o.warmupMs, o.rate);
    this.#end = countBefore(o.warmupMs + o.durationMs, o.rate);
  }

  get backlog(): number {
    return this.#end - this.#next;
  }

  start(t0: number): void {
    this.#t0 = t0;
    this.#pump();
  }

  stop(at: number): void {
    // Stopped before it started: nothing was ever due.
    const due = Number.isNaN(this.#t0) ? 0 : this.#dueBy(at);
    if (due < this.#end) this.#end = due;
  }

  /**
   * A completion is the cheapest clock there is: at high rates responses arrive every few microseconds, so checking
   * the schedule on each one sends requests on time without spinning the event loop. When the in-flight bound
   * holds the pump back, a completion is also what frees a slot. A failure resumes the pump on the next turn of
   * the loop instead: undici reports a connection's failure while it is still emptying that connection's queue,
   * and a request sent from inside that callback could land in the queue being emptied.
   */
  settled(failed: boolean): void {
    if (this.#pumping || this.#stopped || this.#next >= this.#end) return;
    if (failed) {
      if (this.#immediate === null) this.#immediate = setImmediate(this.#onImmediate);
    } else if (this.#blocked || performance.now() >= this.#t0 + this.#next * this.#intervalMs) {
      this.#pump();
    }
  }

  abandon(): number {
    this.#stopped = true;
    this.#clearTimers();
    const first = Math.max(this.#next, this.#firstMeasured);
    const dropped = Math.max(0, this.#end - first);
    this.#next = this.#end;
    return dropped;
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#pump();
  };

  readonly #onImmediate = (): void => {
    this.#immediate = null;
    this.#pump();
  };

  /** Requests due by `now`: every index whose intended time is ≤ now, within the schedule. */
  #dueBy(now: number): number {
    const due = Math.floor((now - this.#t0) / this.#intervalMs) + 1;
    return due < this.#end ? due : this.#end;
  }

  #pump(): void {
    // A request that fails inside dispatch settles synchronously and would re-enter here; the loop below goes on.
    if (this.#stopped || this.#pumping) return;
    this.#pumping = true;
    const run = this.#run;
    let now = performance.now();
    let due = this.#dueBy(now);
    let sent = 0;
    this.#blocked = false;
    while (this.#next < due) {
      if (run.inFlight >= this.#maxInFlight) {
        // Hold the rest back until a completion frees a slot. Everything due now has waited.
        this.#blocked = true;
        if (due > this.#waitMark) this.#waitMark = due;
        break;
      }
      const i = this.#next++;
      const intended = this.#t0 + i * this.#intervalMs;
      const measured = i >= this.#firstMeasured;
      if (measured) {
        if (i < this.#waitMark || !run.hasRoom) this.queued++;
        else if (now - intended > this.maxLagMs) this.maxLagMs = now - intended;
      }
      run.send(intended, measured);
      if (++sent % CLOCK_EVERY === 0) {
        now = performance.now();
        due = this.#dueBy(now);
      }
    }
    this.#pumping = false;
    if (!this.#blocked) this.#arm();
  }

  /**
   * Sets the next wake-up. A next request ≥ 1 ms away gets a timer (Node timers have 1 ms resolution). A nearer
   * one, with requests in flight, is left to their completions (see settled), with a 1 ms timer as the fallback
   * should they all stall. With nothing in flight, nothing else will wake the loop in time, so it spins on
   * setImmediate until the request is due.
   */
  #arm(): void {
    if (this.#next >= this.#end || this.#stopped) return;
    const wait = this.#t0 + this.#next * this.#intervalMs - performance.now();
    if (wait >= 1 || this.#run.inFlight > 0) {
      // An armed timer is never late: the next due time only moves later.
      if (this.#timer === null) this.#timer = setTimeout(this.#onTimer, wait >= 1 ? Math.floor(wait) : 1);
    } else if (this.#immediate === null) {
      this.#immediate = setImmediate(this.#onImmediate);
    }
  }

  #clearTimers(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
  }
}
