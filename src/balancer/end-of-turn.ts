/**
 * Work held until this event-loop turn has handled all its I/O, then done for every item at once (one
 * setImmediate per batch, not per item). The balancer writes this way on both sides: request heads to endpoints,
 * small responses to clients. A peer woken by the first write then usually finds the others already there,
 * rather than going back to sleep between them, and the cross-core wake-ups (the largest kernel cost of a write on
 * a busy machine) drop; a write waits for the rest of the turn only, as HAProxy's send-at-the-end-of-the-loop does.
 */
export class EndOfTurn<T> {
  readonly #items: T[] = [];
  readonly #each: (item: T) => void;
  #scheduled = false;
  readonly #run = (): void => {
    this.#scheduled = false;
    const items = this.#items;
    // Items added while flushing are flushed in this same pass.
    for (let i = 0; i < items.length; i++) this.#each(items[i]!);
    items.length = 0;
  };

  constructor(each: (item: T) => void) {
    this.#each = each;
  }

  add(item: T): void {
    this.#items.push(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#run);
    }
  }
}
