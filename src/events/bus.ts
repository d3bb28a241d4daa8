import { randomUUID } from 'node:crypto';
import { BorealisError, ErrorCodes, InvalidArgumentError, isBorealisError } from '../api/errors.js';
import type { ClusterEvent } from '../master/types.js';
import { decodeLoggedEvent, encodeEvent } from './codec.js';
import { EventLog, type EventLogOptions } from './log.js';
import type { LogCursor } from './log-cursor.js';

/** What a publisher hands the bus: the bus assigns `seq` and, unless given, `at`. */
export type EventInput = Omit<ClusterEvent, 'seq' | 'at'> & { at?: number };

// publish() copies these fields one by one: a field added to ClusterEvent must be added there too.
type Copied = 'type' | 'job' | 'taskId' | 'agentId' | 'state' | 'data' | 'at';
type Uncopied = Exclude<keyof EventInput, Copied>;
const _allCopied: Uncopied extends never ? true : Uncopied = true;
void _allCopied;

export type EventListener = (event: ClusterEvent) => void;

export interface EventBusOptions {
  /** Events kept in memory: live readers and recent resumes are served from here, older ones from the log. */
  capacity?: number;
  /** Called when a listener throws; the bus keeps delivering to the others. */
  onListenerError?: (err: unknown, event: ClusterEvent) => void;
  /**
   * The durable log (EventBus.open makes one). Without it the bus is memory-only: a new epoch per bus, and
   * nothing older than the ring can be replayed.
   */
  log?: EventLog;
  /** The log failed (the bus carries on memory-only, under a new epoch) or survived a problem (a damaged segment). */
  onLogError?: (err: BorealisError) => void;
}

/**
 * The ring only has to cover live readers and short reconnects now that the log serves older seqs: 16,384 events
 * are a minute of a busy cluster (a 1,000-instance submit is ~4,000 events) or ~65 ms at 250,000 events/s. A
 * bigger ring costs publish time: its events outlive the young generation and every one is promoted (65,536 made
 * publishing ~20% dearer at 200k+ events/s).
 */
export const DEFAULT_EVENT_CAPACITY = 16_384;

/**
 * Buffered log bytes that force a write from inside publish(): a burst is written in ~1 MiB pieces rather than
 * held until the next turn of the event loop.
 */
const LOG_FLUSH_BYTES = 1024 * 1024;

/**
 * The master's ordered event log: one event per state change, numbered by a strictly increasing `seq` (no gaps).
 * The newest `capacity` events stay in a ring for live readers; with a log (EventBus.open) every event is also
 * appended to segment files, so a reader can resume from any seq the log still retains, across master restarts.
 *
 * Visibility: `publish` appends to the log's write buffer and tells in-process listeners at once (they die with the
 * process, so they cannot carry a seq past a crash). Readers outside the process (the stream) read only up to
 * `loggedSeq`, which `flush()` advances after writing the buffer to the file: a seq anyone outside has seen is
 * already in the log, so a restarted master continues after it and never gives that seq to another event. The
 * bus flushes on the next turn of the event loop by itself, or at once past LOG_FLUSH_BYTES; the stream flushes
 * before each round of sends.
 *
 * `epoch` names the numbering: it is the log's (kept across restarts of the same data dir) or, memory-only, new
 * per bus. If the log fails, the bus keeps serving from memory under a new epoch, so no reader ever pairs a seq of
 * this run with a different event of the next (the stream closes its subscribers; they resync).
 */
export class EventBus {
  readonly capacity: number;
  readonly #ring: (ClusterEvent | undefined)[];
  /** Each ring slot's protobuf encoding (logged at publish; made lazily when memory-only). */
  readonly #wire: (Uint8Array | undefined)[];
  /** First seq this bus published: the ring holds nothing older. */
  readonly #ringStart: number;
  #nextSeq: number;
  #epoch: string;
  #log: EventLog | null;
  #loggedSeq: number;
  #logFailure: BorealisError | null = null;
  #flushImmediate: NodeJS.Immediate | null = null;
  #closed: Promise<void> | null = null;
  #listeners: EventListener[] = [];
  readonly #onListenerError: (err: unknown, event: ClusterEvent) => void;
  readonly #onLogError: (err: BorealisError) => void;

  constructor(opts: EventBusOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_EVENT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new InvalidArgumentError(`event bus capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#ring = new Array<ClusterEvent | undefined>(capacity);
    this.#wire = new Array<Uint8Array | undefined>(capacity);
    this.#log = opts.log ?? null;
    this.#epoch = this.#log?.epoch ?? randomUUID();
    this.#nextSeq = (this.#log?.lastSeq ?? 0) + 1;
    this.#ringStart = this.#nextSeq;
    this.#loggedSeq = this.#nextSeq - 1;
    this.#onListenerError =
      opts.onListenerError ??
      ((err) => process.emitWarning(`event listener threw: ${err instanceof Error ? err.message : String(err)}`, 'BorealisWarning'));
    this.#onLogError = opts.onLogError ?? ((err) => process.emitWarning(err.message, 'BorealisWarning'));
  }

  /** A bus over the durable log in `dir` (created if needed; see EventLog.open for what recovery does). */
  static async open(dir: string, opts: Omit<EventBusOptions, 'log'> & Omit<EventLogOptions, 'onError'> = {}): Promise<EventBus> {
    const { capacity, onListenerError, onLogError, ...logOpts } = opts;
    const log = await EventLog.open(dir, { ...logOpts, ...(onLogError ? { onError: onLogError } : {}) });
    const busOpts: EventBusOptions = { log };
    if (capacity !== undefined) busOpts.capacity = capacity;
    if (onListenerError) busOpts.onListenerError = onListenerError;
    if (onLogError) busOpts.onLogError = onLogError;
    try {
      return new EventBus(busOpts);
    } catch (err) {
      await log.close();
      throw err;
    }
  }

  get epoch(): string {
    return this.#epoch;
  }

  /** Whether events are being logged (false when memory-only or after the log failed). */
  get durable(): boolean {
    return this.#log !== null;
  }

  /** Why the log stopped, if it did. */
  get logFailure(): BorealisError | null {
    return this.#logFailure;
  }

  /** The log (for its stats and recovery report), while the bus writes to it. */
  get log(): EventLog | null {
    return this.#log;
  }

  /** Seq of the last published event (0 before the first). */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** Seq of the last event readers outside this process may see: written to the log (all of them when memory-only). */
  get loggedSeq(): number {
    return this.#log === null && this.#closed === null ? this.#nextSeq - 1 : this.#loggedSeq;
  }

  /** Seq of the oldest event in the ring (lastSeq + 1 when it is empty). */
  get ringFirstSeq(): number {
    return Math.max(this.#ringStart, this.#nextSeq - this.capacity);
  }

  /** Seq of the oldest event that can still be replayed, from the log or the ring. */
  get firstSeq(): number {
    return this.#log === null ? this.ringFirstSeq : Math.min(this.#log.firstSeq, this.ringFirstSeq);
  }

  publish(input: EventInput): ClusterEvent {
    // Field by field rather than {...input, seq, at}: V8 makes that spread a slow dictionary object (~1.4 µs an
    // event, and slower to read afterwards), which alone capped the publisher near 200,000 events/s.
    const event = { type: input.type } as ClusterEvent;
    if (input.job !== undefined) event.job = input.job;
    if (input.taskId !== undefined) event.taskId = input.taskId;
    if (input.agentId !== undefined) event.agentId = input.agentId;
    if (input.state !== undefined) event.state = input.state;
    if (input.data !== undefined) event.data = input.data;
    event.seq = this.#nextSeq++;
    event.at = input.at ?? Date.now();
    const i = event.seq % this.capacity;
    this.#ring[i] = event;
    const log = this.#log;
    if (log !== null) {
      const bytes = encodeEvent(event);
      this.#wire[i] = bytes;
      try {
        log.append(event.seq, bytes);
        if (log.pendingBytes >= LOG_FLUSH_BYTES) this.flush();
        else this.#flushImmediate ??= setImmediate(() => this.flush());
      } catch (err) {
        this.#failLog(err);
      }
    } else {
      this.#wire[i] = undefined;
    }
    // A listener that subscribes or unsubscribes during delivery affects the next event, not this one.
    const listeners = this.#listeners;
    for (let j = 0; j < listeners.length; j++) {
      try {
        listeners[j]!(event);
      } catch (err) {
        this.#onListenerError(err, event);
      }
    }
    return event;
  }

  /** Writes what the log has buffered, making every published event visible to readers (loggedSeq = lastSeq). */
  flush(): void {
    if (this.#flushImmediate) clearImmediate(this.#flushImmediate);
    this.#flushImmediate = null;
    const log = this.#log;
    if (log === null || this.#closed) return;
    try {
      log.flush();
      this.#loggedSeq = log.writtenSeq;
    } catch (err) {
      this.#failLog(err);
    }
  }

  /**
   * Events with seq > `seq` still in the ring, oldest first, up to lastSeq (in-process readers); [] when there are
   * none yet; null when some of them have left the ring (`read` goes to the log for those).
   */
  since(seq: number): ClusterEvent[] | null {
    checkSeq(seq);
    if (seq >= this.lastSeq) return [];
    if (seq + 1 < this.ringFirstSeq) return null;
    const out: ClusterEvent[] = [];
    for (let s = seq + 1; s < this.#nextSeq; s++) out.push(this.#ring[s % this.capacity]!);
    return out;
  }

  /**
   * Up to `max` events with seq > `seq`, oldest first, as readers outside the process see them (up to loggedSeq):
   * from the ring when they are still in it, else read from the log's segments (one bounded chunk: call again
   * after the last seq for more). [] when there are none yet; 'gone' when they are older than the log retains.
   */
  async read(seq: number, max = 4096): Promise<ClusterEvent[] | 'gone'> {
    checkSeq(seq);
    const last = this.loggedSeq;
    if (seq >= last) return [];
    if (seq + 1 >= this.ringFirstSeq) {
      const out: ClusterEvent[] = [];
      for (let s = seq + 1; s <= last && out.length < max; s++) out.push(this.#ring[s % this.capacity]!);
      return out;
    }
    const cursor = this.cursor();
    if (cursor === null) return 'gone';
    try {
      const chunk = await cursor.read(seq, max);
      return chunk === 'gone' ? 'gone' : chunk.payloads.map(decodeLoggedEvent);
    } finally {
      cursor.close();
    }
  }

  /** A reader of the log's segments (null when memory-only); the caller closes it. */
  cursor(): LogCursor | null {
    return this.#log?.cursor() ?? null;
  }

  /** The event with this seq while it is in the ring, else undefined (no copy: for readers that keep a cursor). */
  at(seq: number): ClusterEvent | undefined {
    if (seq < this.ringFirstSeq || seq > this.lastSeq) return undefined;
    return this.#ring[seq % this.capacity];
  }

  /** The protobuf encoding of the event with this seq while it is in the ring (the bytes that were logged). */
  encodedAt(seq: number): Uint8Array | undefined {
    const e = this.at(seq);
    if (e === undefined) return undefined;
    return (this.#wire[seq % this.capacity] ??= encodeEvent(e));
  }

  /** Delivers every later event to `listener`, synchronously and in order. Returns the unsubscribe. */
  subscribe(listener: EventListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  get subscribers(): number {
    return this.#listeners.length;
  }

  /**
   * Writes and closes the log (cleanly: the next open continues this epoch). Events published afterwards reach
   * in-process listeners only, never a reader outside (loggedSeq stays), so a restarted master may reuse their seqs
   * safely. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.flush();
      const log = this.#log;
      this.#loggedSeq = log === null ? this.loggedSeq : log.writtenSeq;
      this.#log = null;
      await log?.close();
    })();
    return this.#closed;
  }

  #failLog(err: unknown): void {
    const log = this.#log;
    if (log === null) return;
    this.#log = null;
    this.#logFailure = isBorealisError(err) ? err : new BorealisError(ErrorCodes.INTERNAL, `event log failed: ${String(err)}`);
    // Everything published so far becomes readable under the new epoch; readers of the old one resync.
    this.#epoch = randomUUID();
    this.#loggedSeq = this.lastSeq;
    void log.close().catch(() => undefined);
    this.#onLogError(this.#logFailure);
  }
}

function checkSeq(seq: number): void {
  if (!Number.isInteger(seq) || seq < 0) throw new InvalidArgumentError(`expected a seq >= 0, got ${seq}`);
}
