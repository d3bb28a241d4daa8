/**
 * Reconnect delays: exponential, capped, with "equal jitter" (a delay d becomes a uniform pick in [d/2, d]).
 * Exponential so that an agent does not hammer a master that is down; jitter so that the hundreds of agents that
 * lost the same master at the same instant do not all come back in the same millisecond; never below half the
 * nominal delay so that a flapping master still gets the breathing room the exponent promised.
 */
import { InvalidArgumentError } from '../api/errors.js';

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

/** A restarting master is usually back within a second; 5 s bounds how long a healthy agent stays away after. */
export const DEFAULT_BACKOFF = { initialMs: 200, maxMs: 5_000 } as const;

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions = {}, random: () => number = Math.random) {
    this.initialMs = opts.initialMs ?? DEFAULT_BACKOFF.initialMs;
    this.maxMs = opts.maxMs ?? DEFAULT_BACKOFF.maxMs;
    if (!Number.isFinite(this.initialMs) || this.initialMs < 1) {
      throw new InvalidArgumentError(`reconnect.initialMs ${this.initialMs} must be >= 1`, [
        { path: 'reconnect.initialMs', message: 'must be a number of milliseconds >= 1' },
      ]);
    }
    if (!Number.isFinite(this.maxMs) || this.maxMs < this.initialMs) {
      throw new InvalidArgumentError(`reconnect.maxMs ${this.maxMs} must be >= reconnect.initialMs ${this.initialMs}`, [
        { path: 'reconnect.maxMs', message: 'must be >= initialMs' },
      ]);
    }
    this.#random = random;
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt. */
  next(): number {
    // The exponent is clamped so that 2 ** attempt never overflows into Infinity after a very long outage.
    const nominal = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(nominal / 2 + (this.#random() * nominal) / 2);
  }

  /** After a successful registration: the next outage starts again from the initial delay. */
  reset(): void {
    this.#attempt = 0;
  }
}
