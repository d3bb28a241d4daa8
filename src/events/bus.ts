import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../api/errors.js';
import type { ClusterEvent } from '../master/types.js';

/** What a publisher hands the bus: the bus assigns `seq` and, unless given, `at`. */
export type EventInput = Omit<ClusterEvent, 'seq' | 'at'> & { at?: number };

export type EventListener = (event: ClusterEvent) => void;

export interface EventBusOptions {
  /** Events kept for `since()` (resume after a reconnect). */
  capacity?: number;
  /** Called when a listener throws; the bus keeps delivering to the others. */
  onListenerError?: (err: unknown, event: ClusterEvent) => void;
}

/**
 * 65,536 events cover minutes of a busy cluster (a 1,000-instance submit is ~4,000 events), which
 * is the window a reconnecting stream client needs; at ~200 B an event it costs ~13 MiB at most.
 */
export const DEFAULT_EVENT_CAPACITY = 65_536;

/**
 * The master's ordered event log: one event per state change, numbered by a strictly increasing
 * `seq` (no gaps), kept in a bounded ring so a subscriber that fell behind or reconnected can ask
 * for everything after the last seq it saw. `since()` returns null when that part of the ring was
 * overwritten: the caller must then resynchronise from a full view (and the later WebSocket
 * stream says so with a code) rather than silently miss events.
 *
 * `epoch` changes on every bus (every master start): seqs of different epochs are unrelated.
 */
export class EventBus {
  readonly capacity: number;
  readonly epoch: string = randomUUID();
  private readonly ring: (ClusterEvent | undefined)[];
  private nextSeq = 1;
  private listeners: EventListener[] = [];
  private readonly onListenerError: (err: unknown, event: ClusterEvent) => void;

  constructor(opts: EventBusOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_EVENT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new InvalidArgumentError(`event bus capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.ring = new Array<ClusterEvent | undefined>(capacity);
    this.onListenerError =
      opts.onListenerError ??
      ((err) => process.emitWarning(`event listener threw: ${err instanceof Error ? err.message : String(err)}`, 'BorealisWarning'));
  }

  /** Seq of the last published event (0 before the first). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** Seq of the oldest event still in the ring (lastSeq + 1 when it is empty). */
  get firstSeq(): number {
    return Math.max(1, this.nextSeq - this.capacity);
  }

  publish(input: EventInput): ClusterEvent {
    const event: ClusterEvent = { ...input, seq: this.nextSeq++, at: input.at ?? Date.now() };
    this.ring[event.seq % this.capacity] = event;
    // A listener that subscribes or unsubscribes during delivery affects the next event, not this one.
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i]!(event);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
    return event;
  }

  /**
   * Events with seq > `seq`, oldest first; [] when there are none yet; null when some of them
   * have left the ring.
   */
  since(seq: number): ClusterEvent[] | null {
    if (!Number.isInteger(seq) || seq < 0) throw new InvalidArgumentError(`since() takes a seq >= 0, got ${seq}`);
    if (seq >= this.lastSeq) return [];
    if (seq + 1 < this.firstSeq) return null;
    const out: ClusterEvent[] = [];
    for (let s = seq + 1; s < this.nextSeq; s++) out.push(this.ring[s % this.capacity]!);
    return out;
  }

  /** The event with this seq while it is in the ring, else undefined (no copy: for readers that keep a cursor). */
  at(seq: number): ClusterEvent | undefined {
    if (seq < this.firstSeq || seq > this.lastSeq) return undefined;
    return this.ring[seq % this.capacity];
  }

  /** Delivers every later event to `listener`, synchronously and in order. Returns the unsubscribe. */
  subscribe(listener: EventListener): () => void {
    this.listeners = [...this.listeners, listener];
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  get subscribers(): number {
    return this.listeners.length;
  }
}
