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
  encodeControlJson,
  encodeControlProto,
  encodeEventJson,
} from '../proto/events.js';
import type { EventBus } from './bus.js';
import { batchFrameProto, decodeLoggedEvent, eventJsonFromEncoded } from './codec.js';
import type { LogChunk, LogCursor } from './log-cursor.js';
import { type EventFilter, type StreamRequest, isUnfiltered, matches } from './query.js';
import { definedOnly } from '../util/defined-only.js';

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
   * with 4008. Without a durable log it is clamped below the bus capacity, so a subscriber's next event is always
   * still in the ring.
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
  // ~130 ms at 250,000 events/s, minutes at a cluster's usual rate: a reader that has not drained its socket for
  // that long is stuck, not slow. It resumes from the log (or, memory-only, the ring: the bound is clamped below it).
  maxPendingEvents: 32_768,
  // 1 MiB queued is ~10,000 events: several batches of slack for a reader that pauses, not a place to keep a backlog.
  highWaterBytes: 1024 * 1024,
};

type Control = HelloMessage | ResyncMessage | CloseMessage;

/**
 * A replay from the log reads this many frames' worth of events per read (and at most LOG_READ_BYTES): one
 * read(2) of a few hundred KiB feeds several frames, and the socket's high-water mark is checked between reads.
 */
const LOG_READ_FRAMES = 8;
const LOG_READ_BYTES = 512 * 1024;
/**
 * Whole blocks (maxBatchEvents events starting at a multiple of it) are cached across flushes, this many per
 * encoding: subscribers that are out of phase (one woken by its socket draining, one by a flush), or replaying the
 * same stretch of the log, share a block's frame instead of each building (or reading and decoding) it. 64 blocks
 * of 256 events is ~2 MiB of protobuf (~3.5 MiB of JSON) per encoding.
 */
const BLOCK_CACHE = 64;

/**
 * The event stream's server side: subscriptions over the master's EventBus, each a cursor (the last seq it has
 * handed to its socket or filtered out) into the bus' log. Nothing is copied per subscriber at publish time —
 * publishing only notes that a flush is due — so the master's cost does not grow with subscribers, and a slow
 * subscriber's backlog is the shared ring and the log on disk, not a queue of its own.
 *
 * Flushes run off the master's call path: after `batchWindowMs`, or on the next turn once `maxBatchEvents` are
 * waiting. A flush first has the bus write its log buffer (readers only ever see logged events: bus.ts says why),
 * then each subscription writes frames from its cursor until caught up or until its socket holds more than
 * `highWaterBytes`; it resumes when its last frame has been written out (the socket's write callback), so a fast
 * reader runs at socket speed and a slow one never holds up the others. A subscription whose socket stays backed
 * up while it falls more than `maxPendingEvents` behind is closed with 4008 and "slow consumer: resume from seq N".
 * Frames are in seq order, every event after the start exactly once (filters aside): resume with since=N gives no
 * gap and no duplicate, from the ring while N is in it, else from the log's segments, read asynchronously in
 * bounded chunks so a reader replaying a million events never holds the master's thread.
 *
 * Encoded events are cached per seq (the bus keeps each event's protobuf, this stream the JSON) and a batch frame
 * for unfiltered subscribers at the same cursor is built once per flush, so fan-out costs a copy per subscriber,
 * not an encode.
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
  readonly #json: (string | undefined)[];
  /** Frames built during this flush (a partial block, or a filter's), shared by subscribers at the same cursor. */
  readonly #frames = new Map<string, Uint8Array | string | null>();
  /** For a filtered frame in #frames: the last seq it covers. */
  readonly #filteredTo = new Map<string, number>();
  /** Whole-block frames, oldest first, per encoding. */
  readonly #blocks = { protobuf: new Map<number, Uint8Array | string>(), json: new Map<number, Uint8Array | string>() };

  constructor(bus: EventBus, snapshot: () => StreamSnapshot, opts: EventStreamOptions = {}) {
    const o = { ...STREAM_DEFAULTS, ...definedOnly(opts) };
    for (const k of ['maxBatchEvents', 'maxPendingEvents', 'highWaterBytes'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new InvalidArgumentError(`${k} must be a positive integer, got ${o[k]}`);
    }
    if (typeof o.batchWindowMs !== 'number' || !Number.isFinite(o.batchWindowMs) || o.batchWindowMs < 0) {
      throw new InvalidArgumentError(`batchWindowMs must be >= 0, got ${o.batchWindowMs}`);
    }
    if (!bus.durable) {
      // A flush can be a batch late: keep the bound that far inside the ring (half of it, for a tiny test ring).
      o.maxPendingEvents = Math.max(1, Math.min(o.maxPendingEvents, bus.capacity - Math.min(o.maxBatchEvents, Math.floor(bus.capacity / 2))));
    }
    this.#o = o;
    this.#bus = bus;
    this.#snapshot = snapshot;
    this.#cacheSeq = new Float64Array(bus.capacity);
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
    bus.flush();
    const last = bus.loggedSeq;
    let resync: string | null = null;
    if (req.epoch !== undefined && req.epoch !== bus.epoch) {
      resync = `epoch ${req.epoch} is not this master's (${bus.epoch}): the master restarted`;
    } else if (req.since !== undefined && req.since > last) {
      resync = `seq ${req.since} is ahead of this master's log (last ${last}): it belongs to another epoch`;
    } else if (req.since !== undefined && req.since + 1 < bus.firstSeq) {
      resync = `seq ${req.since} has left the event log (oldest kept: ${bus.firstSeq})`;
    }
    const cursor = resync !== null || req.since === undefined ? last : req.since;
    const sub = new Subscription(this, sink, encoding, req.filter, bus.epoch, cursor, Math.max(this.#o.maxPendingEvents, last - cursor));
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

  /** @internal The encoded event, for one in the ring (cached per seq: the protobuf by the bus, the JSON here). */
  encoded(e: ClusterEvent, encoding: EventEncoding): Uint8Array | string {
    if (encoding === 'protobuf') return this.#bus.encodedAt(e.seq)!;
    const i = e.seq % this.#bus.capacity;
    if (this.#cacheSeq[i] !== e.seq) {
      this.#cacheSeq[i] = e.seq;
      this.#json[i] = undefined;
    }
    return (this.#json[i] ??= encodeEventJson(e));
  }

  /**
   * @internal A batch frame of every event in from..to (unfiltered, in the ring, never across a block boundary):
   * a whole block is built once and cached; a partial one once per flush.
   */
  rangeFrame(encoding: EventEncoding, from: number, to: number): Uint8Array | string {
    const whole = to - from + 1 === this.#o.maxBatchEvents;
    const key = whole ? '' : `${encoding}:${from}:${to}`;
    const hit = whole ? this.#blocks[encoding].get(from) : this.#inFlush ? this.#frames.get(key) : undefined;
    if (hit != null) return hit;
    const parts: (Uint8Array | string)[] = [];
    const bus = this.#bus;
    if (encoding === 'protobuf') for (let s = from; s <= to; s++) parts.push(bus.encodedAt(s)!);
    else for (let s = from; s <= to; s++) parts.push(this.encoded(bus.at(s)!, encoding));
    const frame = batchFrame(encoding, parts);
    if (whole) this.cacheBlock(encoding, from, frame);
    else if (this.#inFlush) this.#frames.set(key, frame);
    return frame;
  }

  /** @internal The frame of the whole block starting at `from`, if cached. */
  cachedBlock(encoding: EventEncoding, from: number): Uint8Array | string | undefined {
    return this.#blocks[encoding].get(from);
  }

  /** @internal Keeps a whole block's frame (evicting the oldest past BLOCK_CACHE). */
  cacheBlock(encoding: EventEncoding, from: number, frame: Uint8Array | string): void {
    const blocks = this.#blocks[encoding];
    blocks.set(from, frame);
    if (blocks.size > BLOCK_CACHE) blocks.delete(blocks.keys().next().value!);
  }

  /**
   * @internal The next frame for a filtered subscriber at `from`: the matching events among from..(up to
   * maxBatchEvents of them or `last`), and the last seq it covered. Subscribers with the same filter at the same
   * cursor share it within a flush. `frame` is null when none matched.
   */
  filteredFrame(sub: Subscription, from: number, last: number): { frame: Uint8Array | string | null; to: number } {
    const key = this.#inFlush ? `${sub.encoding}:${sub.filterKey}:${from}:${last}` : '';
    const hit = this.#inFlush ? this.#frames.get(key) : undefined;
    if (hit !== undefined) return { frame: hit, to: this.#filteredTo.get(key)! };
    const bus = this.#bus;
    const max = this.#o.maxBatchEvents;
    let seq = from;
    const out: (Uint8Array | string)[] = [];
    for (; seq <= last && out.length < max; seq++) {
      const e = bus.at(seq)!;
      if (matches(sub.filter, e)) out.push(this.encoded(e, sub.encoding));
    }
    const frame = out.length > 0 ? batchFrame(sub.encoding, out) : null;
    if (this.#inFlush) {
      this.#frames.set(key, frame);
      this.#filteredTo.set(key, seq - 1);
    }
    return { frame, to: seq - 1 };
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
    const bus = this.#bus;
    bus.flush();
    this.#inFlush = true;
    try {
      for (const s of this.#subs) {
        // The log failed and the bus went on under a new epoch: this subscriber's seqs belong to the old one.
        if (s.epoch !== bus.epoch) {
          s.end(EventCloseCode.INTERNAL, `the event log failed (${bus.logFailure?.message ?? 'unknown'}): reconnect, the stream goes on under a new epoch`);
        } else {
          s.pump();
        }
      }
    } finally {
      this.#inFlush = false;
      this.#frames.clear();
      this.#filteredTo.clear();
    }
    const last = bus.loggedSeq;
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
  /** The bus epoch its seqs belong to. */
  readonly epoch: string;
  /** @internal How far behind it may fall while blocked (see EventStream#flush). */
  limit: number;
  /** Waiting for the socket to drain below the high-water mark. */
  blocked = false;
  closed = false;
  readonly encoding: EventEncoding;
  readonly filter: EventFilter;
  /** The filter as a canonical string: subscribers with equal keys share filtered frames. */
  readonly filterKey: string;
  readonly #hub: EventStream;
  readonly #sink: StreamSink;
  readonly #unfiltered: boolean;
  /** Reading from the log's segments (behind the ring): one read in flight at a time. */
  #log: LogCursor | null = null;
  #reading = false;
  readonly #onWritten = (): void => {
    if (this.blocked && !this.closed && this.#sink.bufferedAmount <= this.#hub.o.highWaterBytes) {
      this.blocked = false;
      this.pump();
    }
  };

  constructor(hub: EventStream, sink: StreamSink, encoding: EventEncoding, filter: EventFilter, epoch: string, cursor: number, limit: number) {
    this.#hub = hub;
    this.epoch = epoch;
    this.#sink = sink;
    this.encoding = encoding;
    this.filter = filter;
    this.cursor = cursor;
    this.limit = limit;
    this.#unfiltered = isUnfiltered(filter);
    const axis = (set: ReadonlySet<string> | undefined): string => (set === undefined ? '*' : [...set].sort().join(','));
    this.filterKey = `${axis(filter.types)}|${axis(filter.jobs)}|${axis(filter.agents)}`;
  }

  /** Writes frames from the cursor until caught up or the socket is backed up; behind the ring, reads the log. */
  pump(): void {
    if (this.closed || this.blocked || this.#reading) return;
    const bus = this.#hub.bus;
    const { maxBatchEvents, highWaterBytes } = this.#hub.o;
    const last = bus.loggedSeq;
    while (this.cursor < last) {
      if (this.#sink.bufferedAmount > highWaterBytes) {
        // Woken by #onWritten when the frames already queued have been written out.
        this.blocked = true;
        return;
      }
      const from = this.cursor + 1;
      if (from < bus.ringFirstSeq) {
        // Behind the ring: a block another reader just read from the log is reused, else this one reads it.
        const hit = this.#unfiltered ? this.#hub.cachedBlock(this.encoding, from) : undefined;
        if (hit !== undefined) {
          this.#sendFrame(hit);
          this.cursor = from + maxBatchEvents - 1;
          continue;
        }
        this.#readLog();
        return;
      }
      if (this.#log !== null) {
        // Caught up with the ring: the rest comes from memory.
        this.#log.close();
        this.#log = null;
      }
      if (this.#unfiltered) {
        // Frames end at block boundaries (multiples of maxBatchEvents), so whole blocks are shared (rangeFrame).
        const to = Math.min(last, from - 1 + maxBatchEvents - ((from - 1) % maxBatchEvents));
        this.#sendFrame(this.#hub.rangeFrame(this.encoding, from, to));
        this.cursor = to;
        continue;
      }
      const { frame, to } = this.#hub.filteredFrame(this, from, last);
      if (frame !== null) this.#sendFrame(frame);
      this.cursor = to;
    }
  }

  /** Starts one read of the log after the cursor; its frames go out when it completes, then pumping goes on. */
  #readLog(): void {
    const bus = this.#hub.bus;
    this.#log ??= bus.cursor();
    if (this.#log === null) {
      // Memory-only bus: only reachable when a single burst outran the bound between two flushes.
      this.end(EventCloseCode.SLOW_CONSUMER, `slow consumer: resume from seq ${this.cursor}`);
      return;
    }
    this.#reading = true;
    const max = this.#hub.o.maxBatchEvents;
    // Up to a block boundary, so the frames after the first are whole blocks other readers can share.
    const want = max - (this.cursor % max) + (LOG_READ_FRAMES - 1) * max;
    this.#log.read(this.cursor, want, LOG_READ_BYTES).then(
      (chunk) => {
        this.#reading = false;
        if (this.closed) return;
        if (chunk === 'gone') {
          this.end(EventCloseCode.SLOW_CONSUMER, `slow consumer: events after seq ${this.cursor} have left the event log; resume from seq ${this.cursor} to resync`);
          return;
        }
        // Nothing written past the cursor yet (cannot happen while the cursor trails loggedSeq): the next flush pumps.
        if (chunk.payloads.length === 0) return;
        this.#sendLogged(chunk);
        this.pump();
      },
      (err: unknown) => {
        this.#reading = false;
        this.end(EventCloseCode.INTERNAL, `${(err as Error).message}; resume from seq ${this.cursor}`);
      },
    );
  }

  /**
   * Frames from events read off the log. Unfiltered readers get block-aligned frames (an unfiltered protobuf
   * reader the logged bytes as they are), whole blocks cached for the other readers (see pump). A record that does
   * not decode closes the stream after everything before it (BRL_ERR_INTERNAL; resumable before it).
   */
  #sendLogged(chunk: LogChunk): void {
    const { first, payloads } = chunk;
    const max = this.#hub.o.maxBatchEvents;
    const hub = this.#hub;
    try {
      if (this.#unfiltered) {
        for (let i = 0; i < payloads.length; ) {
          const seq = first + i;
          const n = Math.min(payloads.length - i, max - ((seq - 1) % max));
          const whole = n === max;
          let frame = whole ? hub.cachedBlock(this.encoding, seq) : undefined;
          if (frame === undefined) {
            const part = payloads.slice(i, i + n);
            frame = this.encoding === 'protobuf' ? batchFrameProto(part) : encodeBatchJson(part.map(eventJsonFromEncoded));
            if (whole) hub.cacheBlock(this.encoding, seq, frame);
          }
          this.#sendFrame(frame);
          this.cursor = seq + n - 1;
          i += n;
        }
        return;
      }
      let out: (Uint8Array | string)[] = [];
      for (let i = 0; i < payloads.length; i++) {
        let e: ClusterEvent;
        try {
          e = decodeLoggedEvent(payloads[i]!);
        } catch (err) {
          if (out.length > 0) this.#sendFrame(batchFrame(this.encoding, out));
          this.cursor = first + i - 1;
          throw err;
        }
        if (matches(this.filter, e)) out.push(this.encoding === 'protobuf' ? payloads[i]! : eventJsonFromEncoded(payloads[i]!));
        if (out.length === max) {
          this.#sendFrame(batchFrame(this.encoding, out));
          out = [];
          this.cursor = first + i;
        }
      }
      if (out.length > 0) this.#sendFrame(batchFrame(this.encoding, out));
      this.cursor = first + payloads.length - 1;
    } catch (err) {
      this.end(EventCloseCode.INTERNAL, `${(err as Error).message}; resume from seq ${this.cursor}`);
    }
  }

  /** Sends a close message, then closes the socket with `code`. Idempotent. */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.sendControl({ type: 'close', code, reason, lastSeq: this.cursor });
    this.closed = true;
    this.#stopReading();
    this.#hub.detach(this);
    this.#sink.close(code, closeReason(reason));
  }

  /** The socket closed (the client went away): stop. */
  detach(): void {
    this.closed = true;
    this.#stopReading();
    this.#hub.detach(this);
  }

  #stopReading(): void {
    this.#log?.close();
    this.#log = null;
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
  return encoding === 'protobuf' ? batchFrameProto(parts as Uint8Array[]) : encodeBatchJson(parts as string[]);
}

/** A WebSocket close reason is at most 123 bytes of UTF-8; the close message before it carries the whole text. */
function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let r = reason.slice(0, 120);
  while (Buffer.byteLength(r) > 120) r = r.slice(0, -1);
  return `${r}...`;
}
