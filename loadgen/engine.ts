/** What the two load shapes (open-loop.ts, closed-loop.ts) share with the run that drives them. */

/** The run, as an engine sees it: how much is outstanding, and how to send one request. */
export interface Sender {
  /** Requests sent and not yet settled. */
  readonly inFlight: number;
  /** Whether a request sent now goes out at once (some connection has room) rather than waiting behind another. */
  readonly hasRoom: boolean;
  /** Sends one request whose latency is measured from `startedAt` (a performance.now() time); `measured` false in the warmup. */
  send(startedAt: number, measured: boolean): void;
}

export interface Engine {
  /** Starts sending; `t0` is the run's start, the warmup ends at t0 + warmupMs. */
  start(t0: number): void;
  /** Schedules nothing after `at` (the end of the window, or an early stop); requests already due still go out. */
  stop(at: number): void;
  /** A request settled; `failed` when it ended in a transport error rather than a response. */
  settled(failed: boolean): void;
  /** Requests due but not sent yet. */
  readonly backlog: number;
  /** Gives up on the backlog and clears every timer; returns how many measured requests were dropped unsent. */
  abandon(): number;
  /** Measured requests that could not go out at their intended time because the in-flight bound or every connection was full. */
  readonly queued: number;
  /** How far behind its schedule the generator itself ran, at worst (ms), over requests not held back by the bound. */
  readonly maxLagMs: number;
}
