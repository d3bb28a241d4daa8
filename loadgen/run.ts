/**
 * One load run, start to finish: send (through the open or closed loop) for warmup + duration, then drain the
 * outstanding requests for at most the timeout, then close every connection and report. Requests still
 * unfinished at the drain deadline — sent or not — count as timeouts: dropping them silently would hide exactly
 * the slowest requests.
 */
import type { Dispatcher } from 'undici';
import { ClosedLoop } from './closed-loop.js';
import { TIMEOUT_CODE } from './error-kind.js';
import { Connections } from './connections.js';
import type { Engine, Sender } from './engine.js';
import { OpenLoop } from './open-loop.js';
import { type LoadOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Recorder } from './recorder.js';
import { type LoadReport, buildReport } from './report.js';
import { RequestHandler, type Settler } from './request-handler.js';

/**
 * Runs one load and resolves with its report. Rejects (with InvalidArgumentError, BRL_ERR_INVALID_ARGUMENT, one
 * problem per bad option) only when the options are refused; failed requests are counted in the report instead.
 */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  return new LoadRun(resolveOptions(options)).run();
}

/**
 * How often outstanding requests are checked against the timeout: a tenth of it, within 5..100 ms. undici's own
 * headers and body timeouts tick at ~0.5 s (its coarse fast timers), too coarse for short timeouts; one sweep over
 * the outstanding requests costs less than a timer per request.
 */
const sweepEveryMs = (timeoutMs: number): number => Math.min(100, Math.max(5, timeoutMs / 10));

/** One error object for every timed-out request: only its code is read, so it need not be built per request. */
const TIMED_OUT: Error = Object.assign(new Error('no complete response within the timeout'), { code: TIMEOUT_CODE });

class LoadRun implements Settler, Sender {
  inFlight = 0;
  readonly #o: ResolvedOptions;
  readonly #recorder = new Recorder();
  readonly #connections: Connections;
  readonly #engine: Engine;
  /** Handlers of settled requests, reused; grows to the peak of outstanding requests and no further. */
  readonly #free: RequestHandler[] = [];
  /** Outstanding requests, each at its handler's `slot`, for the timeout sweep. */
  readonly #active: RequestHandler[] = [];
  /** One options object for every request: undici reads it and keeps nothing of it. */
  readonly #dispatch: Dispatcher.DispatchOptions;
  #measureStart = 0;
  #plannedEnd = 0;
  #windowEnd = 0;
  #draining = false;
  /** Past the drain deadline: what fails from now on failed by running out of time. */
  #closing = false;
  #finished = false;
  #finish: () => void = () => undefined;
  #windowTimer: NodeJS.Timeout | null = null;
  #deadlineTimer: NodeJS.Timeout | null = null;
  #sweepTimer: NodeJS.Timeout | null = null;

  constructor(o: ResolvedOptions) {
    this.#o = o;
    this.#connections = new Connections(o);
    this.#engine =
      o.mode === 'open'
        ? new OpenLoop(this, { rate: o.rate!, warmupMs: o.warmupMs, durationMs: o.durationMs, maxInFlight: o.maxInFlight })
        : new ClosedLoop(this, { slots: o.connections * o.pipelining, warmupMs: o.warmupMs });
    this.#dispatch = {
      path: o.path,
      method: o.method as Dispatcher.HttpMethod,
      headers: o.headers,
      body: o.body,
      // undici holds back pipelining behind a request until its headers arrive unless told the request is not blocking.
      blocking: false,
    };
  }

  get hasRoom(): boolean {
    return this.#connections.hasRoom;
  }

  send(startedAt: number, measured: boolean): void {
    const h = this.#free.pop() ?? new RequestHandler(this);
    h.reset(startedAt, performance.now(), measured);
    h.slot = this.#active.length;
    this.#active.push(h);
    this.inFlight++;
    this.#connections.dispatch(this.#dispatch, h);
  }

  settle(h: RequestHandler, err: Error | null): void {
    const now = performance.now();
    this.inFlight--;
    const last = this.#active.pop()!;
    if (last !== h) {
      this.#active[h.slot] = last;
      last.slot = h.slot;
    }
    this.#connections.release(h.connection);
    if (h.measured) this.#recorder.record(h.status, h.bytes, err, h.startedAt, now, this.#closing);
    this.#free.push(h);
    this.#engine.settled(err !== null);
    if (this.#draining) this.#maybeFinish();
  }

  async run(): Promise<LoadReport> {
    const o = this.#o;
    const signal = o.signal;
    const onAbort = (): void => this.#endWindow(performance.now());
    await new Promise<void>((resolve) => {
      this.#finish = resolve;
      const t0 = performance.now();
      this.#measureStart = t0 + o.warmupMs;
      this.#plannedEnd = this.#measureStart + o.durationMs;
      if (signal?.aborted) {
        this.#endWindow(t0);
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#windowTimer = setTimeout(() => this.#endWindow(this.#plannedEnd), this.#plannedEnd - t0);
      this.#sweepTimer = setInterval(this.#sweep, sweepEveryMs(o.timeoutMs));
      this.#engine.start(t0);
    });
    signal?.removeEventListener('abort', onAbort);
    if (this.#windowTimer !== null) clearTimeout(this.#windowTimer);
    if (this.#deadlineTimer !== null) clearTimeout(this.#deadlineTimer);
    if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer);
    this.#recorder.recordUnsent(this.#engine.abandon());
    // A clean drain leaves nothing outstanding, so close() returns at once; past the deadline, destroy() fails the
    // stragglers, and settle() counts each as a timeout.
    if (this.#closing) await this.#connections.destroy();
    else await this.#connections.close();
    return buildReport(o, this.#recorder, {
      durationMs: Math.max(0, this.#windowEnd - this.#measureStart),
      measureStart: this.#measureStart,
      maxLagMs: this.#engine.maxLagMs,
      queued: this.#engine.queued,
    });
  }

  /** Times out every outstanding request sent more than the timeout ago. */
  readonly #sweep = (): void => {
    const limit = performance.now() - this.#o.timeoutMs;
    const active = this.#active;
    // Backwards: expiring settles synchronously, which moves the last entry into the freed slot, already visited.
    for (let i = active.length - 1; i >= 0; i--) {
      const h = active[i];
      if (h !== undefined && h.sentAt <= limit) h.expire(TIMED_OUT);
    }
  };

  /** Ends the measured window at `at` (its planned end, or now when stopped early) and starts the drain. */
  #endWindow(at: number): void {
    if (this.#draining) return;
    this.#draining = true;
    if (this.#windowTimer !== null) clearTimeout(this.#windowTimer);
    this.#windowTimer = null;
    this.#windowEnd = Math.min(at, this.#plannedEnd);
    this.#engine.stop(at);
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = null;
      this.#closing = true;
      this.#done();
    }, this.#o.timeoutMs);
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.inFlight === 0 && this.#engine.backlog === 0) this.#done();
  }

  #done(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#finish();
  }
}
