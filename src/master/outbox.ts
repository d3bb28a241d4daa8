/**
 * Write-ahead ordering for the master's side effects.
 *
 * The master changes its in-memory state and starts the journal append in one synchronous step;
 * what the outside world sees of that change (events, agent acks and launches, API responses) must
 * wait until the entry is durable, and must come out in the order the changes were made, including
 * effects that have no journal entry of their own (an ack for a duplicate update must not overtake
 * the append of the original). The outbox is that queue: appends and effects in program order; an
 * effect runs once every append queued before it has settled.
 *
 * When nothing is queued an effect runs at once, so the idle path costs no promise.
 */
type Item = { kind: 'append'; settled: boolean; error: unknown } | { kind: 'effect'; fn: () => void };

export class Outbox {
  private readonly queue: Item[] = [];
  private head = 0;
  private draining = false;

  constructor(
    /** Called (in order) for every append that failed; effects after it still run. */
    private readonly onAppendError: (err: unknown) => void,
    /** Called when an effect throws: effects are the master's own code, so this is a bug report. */
    private readonly onEffectError: (err: unknown) => void,
  ) {}

  /** Queues an in-flight append. */
  append(p: Promise<unknown>): void {
    const item: Item = { kind: 'append', settled: false, error: undefined };
    this.queue.push(item);
    p.then(
      () => {
        item.settled = true;
        this.drain();
      },
      (err: unknown) => {
        item.settled = true;
        item.error = err ?? new Error('journal append failed');
        this.drain();
      },
    );
  }

  /** Runs `fn` after every append queued so far is durable (or failed). */
  effect(fn: () => void): void {
    if (this.head === this.queue.length) {
      this.run(fn);
      return;
    }
    this.queue.push({ kind: 'effect', fn });
  }

  /** Resolves once everything queued so far has been processed. */
  barrier(): Promise<void> {
    return new Promise((resolve) => this.effect(resolve));
  }

  get idle(): boolean {
    return this.head === this.queue.length;
  }

  private run(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onEffectError(err);
    }
  }

  private drain(): void {
    if (this.draining) return; // an effect's own appends/effects are picked up by the running loop
    this.draining = true;
    try {
      while (this.head < this.queue.length) {
        const item = this.queue[this.head]!;
        if (item.kind === 'append') {
          if (!item.settled) break;
          this.head++;
          if (item.error !== undefined) this.onAppendError(item.error);
        } else {
          this.head++;
          this.run(item.fn);
        }
      }
    } finally {
      this.draining = false;
      // Compact once the consumed prefix dominates, keeping shifts amortised O(1).
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
    }
  }
}
