import { InvalidArgumentError } from '../api/errors.js';
import type { ClusterEvent } from '../master/types.js';
import {
  type CloseMessage,
  type EventEncoding,
  EventCloseCode,
  type HelloMessage,
  type ResyncMessage,
  type StreamSnapshot,
  encodeBatchJson,
  encodeBatchProto,
  encodeControlJson,
  encodeControlProto,
  encodeEventJson,
  encodeEventProto,
} from '../proto/events.js';
import type { EventBus } from './bus.js';
import { type EventFilter, type StreamRequest, isUnfiltered, matches } from './query.js';

/** Where a subscription writes: a transport WebSocket (WsSocket fits), or anything with the same contract. */
export interface StreamSink {
  /** Bytes queued in user space; above `highWaterBytes` the subscription stops writing until it drains. */
  readonly bufferedAmount: number;
  send(bytes: Uint8Array, onWritten?: () => void): void;
  sendText(text: string, onWritten?: () => void): void;
  close(code: number, reason: string): void;
}

export interface EventStreamOptions {
  /** Events per frame at most. */
  maxBatchEvents?: number;
  /** How long the first event of a batch waits for company before its frame goes out. */
  batchWindowMs?: number;
  /**
   * How far (in events) a subscriber may fall behind the log while its socket is backed up before it is cut off
   * with 4008. Clamped below the bus capacity, so a subscriber's next event is always still in the ring.
   */
  maxPendingEvents?: number;
  /** Above this many bytes queued on a socket, its subscription waits for the socket to drain. */
  highWaterBytes?: number;
}

export const STREAM_DEFAULTS = {
  // 256 events is ~25 KiB of protobuf: big enough that per-frame costs vanish, small enough to stay under a
  // typical socket buffer, so one frame never blocks the next subscriber's.
  maxBatchEvents: 256,
  // 5 ms is invisible to a person watching and lets a burst (a 1,000-instance submit) share frames.
  batchWindowMs: 5,
  // Half the default ring: a reader cut off at the bound still finds its next event in the ring when it resumes.
  maxPendingEvents: 32_768,
  // 1 MiB queued is ~10,000 events: several batches of slack for a reader that pauses, not a place to keep a backlog.
  highWaterBytes: 1024 * 1024,
};

type Control = HelloMessage | ResyncMessage | CloseMessage;

/**
 * The event stream's server side: subscriptions over the master's EventBus, each a cursor (the last seq it has
 * handed to its socket or filtered out) into the bus' ring. Nothing is copied per subscriber at publish time —
 * publishing only notes that a flush is due — so the master's cost does not grow with subscribers, and a slow
 * subscriber's backlog is the shared ring, not a queue of its own.
 *
 * Flushes run off the master's call path: after `batchWindowMs`, or on the next turn once `maxBatchEvents` are
 * waiting. Each subscription then writes frames from its cursor until caught up or until its socket holds more
 * than `highWaterBytes`; it resumes when its last frame has been written out (the socket's write callback), so
 * a fast reader runs at socket speed and a slow one never holds up the others. A subscription whose socket stays
 * backed up while it falls more than `maxPendingEvents` behind is closed with 4008 and "slow consumer: resume
 * from seq N". Frames are in seq order, every event after the start exactly once (filters aside): resume with
 * since=N gives no gap and no duplicate.
 *
 * Encoded events are cached per seq (a ring beside the bus' ring) and a batch frame for unfiltered subscribers
 * at the same cursor is built once per flush, so fan-out costs a copy per subscriber, not an encode.
 */
export class EventStream {
  readonly #bus: EventBus;
  readonly #snapshot: () => StreamSnapshot;
  readonly #o: typeof STREAM_DEFAULTS;
  readonly #subs = new Set<Subscription>();
  readonly #off: () => void;
  #unflushed = 0;
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  #inFlush = false;
  #closed = false;
  readonly #cacheSeq: Float64Array;
  readonly #pb: (Uint8Array | undefined)[];
  readonly #json: (string | undefined)[];
  readonly #frames = new Map<string, Uint8Array | string>();

  constructor(bus: EventBus, snapshot: () => StreamSnapshot, opts: EventStreamOptions = {}) {
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as EventStreamOptions;
    const o = { ...STREAM_DEFAULTS, ...given };
    for (const k of ['maxBatchEvents', 'maxPendingEvents', 'highWaterBytes'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new InvalidArgumentError(`${k} must be a positive integer, got ${o[k]}`);
    }
    if (typeof o.batchWindowMs !== 'number' || !Number.isFinite(o.batchWindowMs) || o.batchWindowMs < 0) {
      throw new InvalidArgumentError(`batchWindowMs must be >= 0, got ${o.batchWindowMs}`);
    }
    // A flush can be a batch late: keep the bound that far inside the ring (half of it, for a tiny test ring).
    o.maxPendingEvents = Math.max(1, Math.min(o.maxPendingEvents, bus.capacity - Math.min(o.maxBatchEvents, Math.floor(bus.capacity / 2))));
    this.#o = o;
    this.#bus = bus;
    this.#snapshot = snapshot;
    this.#cacheSeq = new Float64Array(bus.capacity);
    this.#pb = new Array<Uint8Array | undefined>(bus.capacity);
    this.#json = new Array<string | undefined>(bus.capacity);
    this.#off = bus.subscribe(() => this.#onPublish());
  }

  get subscribers(): number {
    return this.#subs.size;
  }

  get options(): Readonly<typeof STREAM_DEFAULTS> {
    return this.#o;
  }

  /**
   * Starts a subscription: a hello (resume from `since`, or live from now) or a resync (the seq is gone: a
   * snapshot as of the current seq), then the events after it. Returns null when the stream is closed (the sink
   * is closed with 1001).
   */
  open(sink: StreamSink, encoding: EventEncoding, req: StreamRequest): Subscription | null {
    if (this.#closed) {
      sink.close(EventCloseCode.GOING_AWAY, 'server closing');
      return null;
    }
    const bus = this.#bus;
    const last = bus.lastSeq;
    let resync: string | null = null;
    if (req.epoch !== undefined && req.epoch !== bus.epoch) {
      resync = `epoch ${req.epoch} is not this master's (${bus.epoch}): the master restarted`;
    } else if (req.since !== undefined && req.since > last) {
      resync = `seq ${req.since} is ahead of this master's log (last ${last}): it belongs to another epoch`;
    } else if (req.since !== undefined && req.since + 1 < bus.firstSeq) {
      resync = `seq ${req.since} has left the event log (oldest kept: ${bus.firstSeq})`;
    }
    const cursor = resync !== null || req.since === undefined ? last : req.since;
    const sub = new Subscription(this, sink, encoding, req.filter, cursor, Math.max(this.#o.maxPendingEvents, last - cursor));
    let first: HelloMessage | ResyncMessage;
    if (resync === null) {
      first = { type: 'hello', epoch: bus.epoch, seq: cursor, firstSeq: bus.firstSeq };
    } else {
      let snapshot: StreamSnapshot;
      try {
        snapshot = this.#snapshot();
      } catch (err) {
        sub.end(EventCloseCode.INTERNAL, `cannot take a snapshot: ${(err as Error).message}`);
        return null;
      }
      first = { type: 'resync', epoch: bus.epoch, seq: last, requestedSeq: req.since ?? 0, reason: resync, snapshot };
    }
    sub.sendControl(first);
    this.#subs.add(sub);
    sub.pump();
    return sub;
  }

  /** Closes every subscription (1001, with the seq to resume from) and stops listening to the bus. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#off();
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
    for (const s of [...this.#subs]) s.end(EventCloseCode.GOING_AWAY, `server closing: resume from seq ${s.cursor}`);
  }

  // ---- internals shared with Subscription ------------------------------------------------------

  /** @internal */
  get bus(): EventBus {
    return this.#bus;
  }

  /** @internal */
  get o(): Readonly<typeof STREAM_DEFAULTS> {
    return this.#o;
  }

  /** @internal */
  detach(sub: Subscription): void {
    this.#subs.delete(sub);
  }

  /** @internal The encoded event (cached per seq). */
  encoded(e: ClusterEvent, encoding: 'protobuf'): Uint8Array;
  encoded(e: ClusterEvent, encoding: 'json'): string;
  encoded(e: ClusterEvent, encoding: EventEncoding): Uint8Array | string;
  encoded(e: ClusterEvent, encoding: EventEncoding): Uint8Array | string {
    const i = e.seq % this.#bus.capacity;
    if (this.#cacheSeq[i] !== e.seq) {
      this.#cacheSeq[i] = e.seq;
      this.#pb[i] = undefined;
      this.#json[i] = undefined;
    }
    if (encoding === 'protobuf') return (this.#pb[i] ??= encodeEventProto(e));
    return (this.#json[i] ??= encodeEventJson(e));
  }

  /** @internal A batch frame of every event in from..to (unfiltered), built once per flush. */
  rangeFrame(encoding: EventEncoding, from: number, to: number): Uint8Array | string {
    const key = `${encoding}:${from}:${to}`;
    const hit = this.#inFlush ? this.#frames.get(key) : undefined;
    if (hit !== undefined) return hit;
    const parts: (Uint8Array | string)[] = [];
    for (let s = from; s <= to; s++) parts.push(this.encoded(this.#bus.at(s)!, encoding));
    const frame = batchFrame(encoding, parts);
    if (this.#inFlush) this.#frames.set(key, frame);
    return frame;
  }

  #onPublish(): void {
    if (this.#subs.size === 0) return;
    this.#unflushed++;
    if (this.#unflushed >= this.#o.maxBatchEvents) {
      this.#immediate ??= setImmediate(() => this.#flush());
    } else if (this.#timer === null) {
      this.#timer = setTimeout(() => this.#flush(), this.#o.batchWindowMs);
      this.#timer.unref();
    }
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = null;
    this.#immediate = null;
    this.#unflushed = 0;
    this.#inFlush = true;
    try {
      for (const s of this.#subs) s.pump();
    } finally {
      this.#inFlush = false;
      this.#frames.clear();
    }
    const last = this.#bus.lastSeq;
    const bound = this.#o.maxPendingEvents;
    for (const s of [...this.#subs]) {
      const lag = last - s.cursor;
      // A resumed subscriber starts with its backlog as its bound; once it has caught up within the bound, the bound holds.
      if (lag <= bound) s.limit = bound;
      else if (s.blocked && lag > s.limit) s.end(EventCloseCode.SLOW_CONSUMER, `slow consumer: resume from seq ${s.cursor}`);
    }
  }
}

/** One subscriber: a cursor into the log, a filter and a socket. Created by EventStream.open. */
export class Subscription {
  /** The last seq handed to the socket or skipped by the filter: resume with since=cursor. */
  cursor: number;
  /** @internal How far behind it may fall while blocked (see EventStream#flush). */
  limit: number;
  /** Waiting for the socket to drain below the high-water mark. */
  blocked = false;
  closed = false;
  readonly encoding: EventEncoding;
  readonly filter: EventFilter;
  readonly #hub: EventStream;
  readonly #sink: StreamSink;
  readonly #unfiltered: boolean;
  readonly #onWritten = (): void => {
    if (this.blocked && !this.closed && this.#sink.bufferedAmount <= this.#hub.o.highWaterBytes) {
      this.blocked = false;
      this.pump();
    }
  };

  constructor(hub: EventStream, sink: StreamSink, encoding: EventEncoding, filter: EventFilter, cursor: number, limit: number) {
    this.#hub = hub;
    this.#sink = sink;
    this.encoding = encoding;
    this.filter = filter;
    this.cursor = cursor;
    this.limit = limit;
    this.#unfiltered = isUnfiltered(filter);
  }

  /** Writes frames from the cursor until caught up or the socket is backed up. */
  pump(): void {
    if (this.closed || this.blocked) return;
    const bus = this.#hub.bus;
    const { maxBatchEvents, highWaterBytes } = this.#hub.o;
    const last = bus.lastSeq;
    while (this.cursor < last) {
      if (this.#sink.bufferedAmount > highWaterBytes) {
        // Woken by #onWritten when the frames already queued have been written out.
        this.blocked = true;
        return;
      }
      const from = this.cursor + 1;
      if (from < bus.firstSeq) {
        // Only reachable when a single burst outran the bound between two flushes: the events are gone.
        this.end(EventCloseCode.SLOW_CONSUMER, `slow consumer: resume from seq ${this.cursor}`);
        return;
      }
      if (this.#unfiltered) {
        const to = Math.min(last, this.cursor + maxBatchEvents);
        this.#sendFrame(this.#hub.rangeFrame(this.encoding, from, to));
        this.cursor = to;
        continue;
      }
      let seq = from;
      const out: (Uint8Array | string)[] = [];
      for (; seq <= last && out.length < maxBatchEvents; seq++) {
        const e = bus.at(seq)!;
        if (matches(this.filter, e)) out.push(this.#hub.encoded(e, this.encoding));
      }
      if (out.length > 0) this.#sendFrame(batchFrame(this.encoding, out));
      this.cursor = seq - 1;
    }
  }

  /** Sends a close message, then closes the socket with `code`. Idempotent. */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.sendControl({ type: 'close', code, reason, lastSeq: this.cursor });
    this.closed = true;
    this.#hub.detach(this);
    this.#sink.close(code, closeReason(reason));
  }

  /** The socket closed (the client went away): stop. */
  detach(): void {
    this.closed = true;
    this.#hub.detach(this);
  }

  /** @internal */
  sendControl(m: Control): void {
    if (this.closed) return;
    this.#sendFrame(this.encoding === 'protobuf' ? encodeControlProto(m) : encodeControlJson(m));
  }

  #sendFrame(frame: Uint8Array | string): void {
    if (typeof frame === 'string') this.#sink.sendText(frame, this.#onWritten);
    else this.#sink.send(frame, this.#onWritten);
  }
}

/** A batch frame from events already encoded in `encoding` (the cached per-seq encodings: no re-encode). */
function batchFrame(encoding: EventEncoding, parts: (Uint8Array | string)[]): Uint8Array | string {
  return encoding === 'protobuf' ? encodeBatchProto(parts as Uint8Array[]) : encodeBatchJson(parts as string[]);
}

/** A WebSocket close reason is at most 123 bytes of UTF-8; the close message before it carries the whole text. */
function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let r = reason.slice(0, 120);
  while (Buffer.byteLength(r) > 120) r = r.slice(0, -1);
  return `${r}...`;
}
