/**
 * One Node timer for many deadlines. Hundreds of simulated agents in one process each want a heartbeat, a
 * reconnect delay and a timer per simulated task; a binary min-heap keyed by deadline, fired by a single
 * `setTimeout` armed for the earliest entry, keeps that to one handle and one wake-up per due instant.
 *
 * Cancellation is lazy (the entry is flagged and skipped when it reaches the top), so cancel is O(1); the heap is
 * rebuilt when flagged entries outnumber live ones, so it cannot grow without bound under cancel-heavy use.
 *
 * The Node timer stays ref'd while any entry is live: an agent waiting out a reconnect delay holds no socket, and
 * must not let the process exit under it.
 */

export interface Timer {
  /** Idempotent; a no-op once the timer has fired. */
  cancel(): void;
}

class Entry implements Timer {
  cancelled = false;
  fired = false;
  constructor(
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
    readonly queue: TimerQueue,
  ) {}

  cancel(): void {
    if (this.cancelled || this.fired) return;
    this.cancelled = true;
    this.queue.onCancel();
  }
}

/** Rebuild once this many flagged entries are in the heap and they outnumber the live ones. */
const COMPACT_MIN = 256;

export class TimerQueue {
  readonly #heap: Entry[] = [];
  #seq = 0;
  #live = 0;
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Infinity;
  /** Errors thrown by callbacks are reported here rather than unwinding through the queue. */
  readonly #onError: (err: unknown) => void;

  constructor(onError?: (err: unknown) => void) {
    this.#onError =
      onError ??
      ((err) => {
        // A throwing callback is a bug in the caller; surface it like an uncaught exception, on a later tick.
        setImmediate(() => {
          throw err;
        });
      });
  }

  /** Entries not yet fired or cancelled. */
  get size(): number {
    return this.#live;
  }

  /** Runs `fn` once, `ms` from now (never sooner; ordered by deadline, then by scheduling order). */
  after(ms: number, fn: () => void): Timer {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const entry = new Entry(Date.now() + delay, this.#seq++, fn, this);
    this.#push(entry);
    this.#live++;
    this.#arm();
    return entry;
  }

  /** @internal called by Entry.cancel */
  onCancel(): void {
    this.#live--;
    if (this.#live === 0) {
      this.#heap.length = 0;
      this.#disarm();
      return;
    }
    const flagged = this.#heap.length - this.#live;
    if (flagged >= COMPACT_MIN && flagged > this.#live) this.#compact();
  }

  #arm(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop();
    const top = this.#heap[0];
    if (top === undefined) {
      this.#disarm();
      return;
    }
    if (this.#timer !== undefined && this.#armedAt <= top.at) return;
    this.#disarm();
    this.#armedAt = top.at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, top.at - Date.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    const now = Date.now();
    // Entries scheduled by callbacks for "now" run in this same pass: they are due, and looping keeps their order.
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      const entry = this.#pop()!;
      if (entry.cancelled) continue;
      entry.fired = true;
      this.#live--;
      try {
        entry.fn();
      } catch (err) {
        this.#onError(err);
      }
    }
    this.#arm();
  }

  #compact(): void {
    const keep = this.#heap.filter((e) => !e.cancelled);
    this.#heap.length = 0;
    for (const e of keep) this.#push(e);
  }

  #push(entry: Entry): void {
    const h = this.#heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): Entry | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** The process-wide queue every agent uses unless given its own. */
export const sharedTimers = new TimerQueue();
