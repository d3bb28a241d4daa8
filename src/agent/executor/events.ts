/**
 * A minimal typed event channel: each runner owns one, so there is no process-wide emitter and no string-typed
 * `any` payloads. A listener that throws is a bug in the listener; it must not leave the runner half-transitioned,
 * so the error is rethrown on a later tick instead of unwinding through the runner.
 */
export type EventMap = { [event: string]: unknown[] };

type Listener<Args extends unknown[]> = (...args: Args) => void;

export class TypedEvents<M extends EventMap> {
  readonly #listeners = new Map<keyof M, Set<Listener<never[]>>>();

  /** Subscribes; the returned function unsubscribes. */
  on<K extends keyof M>(event: K, listener: Listener<M[K]>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    const stored = listener as unknown as Listener<never[]>;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  emit<K extends keyof M>(event: K, ...args: M[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const stored of [...set]) {
      try {
        (stored as unknown as Listener<M[K]>)(...args);
      } catch (err) {
        setImmediate(() => {
          throw err;
        });
      }
    }
  }
}
