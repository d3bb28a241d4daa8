import { BorealisError, ErrorCodes } from '../api/errors.js';
import type { ClusterEvent } from '../master/types.js';
import { type EventMsg, EventType, eventFromProto } from '../proto/events.js';
import { TO_OBJECT, taskStateFromWire, taskStateToWire } from '../proto/index.js';

/**
 * A logged event (a protobuf `borealis.v1.Event`, as encodeEventProto wrote it) back as the ClusterEvent it was:
 * the stream needs the object when it replays from disk to a filtered or JSON subscriber. A record that passed its
 * CRC but does not decode is a bug or foreign data: BRL_ERR_INTERNAL.
 */
export function decodeLoggedEvent(bytes: Uint8Array): ClusterEvent {
  let m: EventMsg;
  try {
    m = EventType.toObject(EventType.decode(bytes), TO_OBJECT) as EventMsg;
  } catch (err) {
    throw new BorealisError(ErrorCodes.INTERNAL, `event log record is not an Event: ${(err as Error).message}`);
  }
  return eventFromProto(m, (what, err) => new BorealisError(ErrorCodes.INTERNAL, `event log record has bad ${what}: ${(err as Error).message}`));
}

// ---- encoding without protobufjs' Writer ---------------------------------------------------------------
//
// protobufjs builds a list of operation objects per message and then a buffer; at 200,000 events/s that garbage
// was a fifth of the publisher's time. The Event has eight fields, so it is encoded by hand straight into a pooled
// slab (as Node pools small Buffers): one view allocated per event, no intermediate objects.

/** Slab size: ~500 events per slab; a slab is freed once the ring no longer holds any event in it. */
const POOL_BYTES = 64 * 1024;
let pool = Buffer.allocUnsafe(POOL_BYTES);
let poolUsed = 0;

const TAG_SEQ = (1 << 3) | 0;
const TAG_AT = (2 << 3) | 0;
const TAG_TYPE = (3 << 3) | 2;
const TAG_JOB = (4 << 3) | 2;
const TAG_TASK = (5 << 3) | 2;
const TAG_AGENT = (6 << 3) | 2;
const TAG_STATE = (7 << 3) | 0;
const TAG_DATA = (8 << 3) | 2;

/** Bytes of a varint of `v` (v < 2^53). */
function varintBytes(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * Writes `v` (an integer in 0..2^53) as a varint at `pos`; returns the position after it. Works on two 32-bit
 * halves with integer operations: a timestamp in ms (41 bits) would otherwise cost six float divisions.
 */
function writeVarint(b: Uint8Array, pos: number, v: number): number {
  let lo = v >>> 0;
  let hi = (v - lo) / 4294967296;
  while (hi > 0) {
    b[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    b[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  b[pos++] = lo;
  return pos;
}

/** A length-delimited string field at `pos` (room for 3 bytes per char + 6 is guaranteed by the caller). */
function writeString(b: Buffer, pos: number, tag: number, s: string): number {
  b[pos++] = tag;
  // Short ASCII (ids, names, types: nearly every string here) is copied by a loop: cheaper than a call into C++.
  const len = s.length;
  if (len < 128) {
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[pos + 1 + i] = c;
    }
    if (i === len) {
      b[pos] = len;
      return pos + 1 + len;
    }
  }
  // Assume a one-byte length (strings under 128 bytes: nearly all of them) and move the bytes if it was not.
  const n = b.write(s, pos + 1);
  if (n < 128) {
    b[pos] = n;
    return pos + 1 + n;
  }
  const k = varintBytes(n);
  b.copyWithin(pos + k, pos + 1, pos + 1 + n);
  writeVarint(b, pos, n);
  return pos + k + n;
}

/**
 * The event as a protobuf `borealis.v1.Event`: the same message encodeEventProto (src/proto/events.ts) makes,
 * field for field, so either decoder reads it. The result is a view into a shared slab: do not write to it.
 */
export function encodeEvent(e: ClusterEvent): Uint8Array {
  const data = e.data === undefined ? undefined : JSON.stringify(e.data);
  // Worst case: 3 bytes per UTF-16 unit, 6 bytes of tag and length per string, 2 varints of 8 bytes, the state.
  let room = 40 + 3 * e.type.length;
  if (e.job !== undefined) room += 3 * e.job.length + 6;
  if (e.taskId !== undefined) room += 3 * e.taskId.length + 6;
  if (e.agentId !== undefined) room += 3 * e.agentId.length + 6;
  if (data !== undefined) room += 3 * data.length + 6;
  if (poolUsed + room > pool.length) {
    pool = Buffer.allocUnsafe(Math.max(POOL_BYTES, room));
    poolUsed = 0;
  }
  const b = pool;
  const start = poolUsed;
  let p = start;
  b[p++] = TAG_SEQ;
  p = writeVarint(b, p, e.seq);
  b[p++] = TAG_AT;
  p = writeVarint(b, p, e.at);
  p = writeString(b, p, TAG_TYPE, e.type);
  if (e.job !== undefined) p = writeString(b, p, TAG_JOB, e.job);
  if (e.taskId !== undefined) p = writeString(b, p, TAG_TASK, e.taskId);
  if (e.agentId !== undefined) p = writeString(b, p, TAG_AGENT, e.agentId);
  if (e.state !== undefined) {
    b[p++] = TAG_STATE;
    p = writeVarint(b, p, taskStateToWire(e.state));
  }
  if (data !== undefined) p = writeString(b, p, TAG_DATA, data);
  // Keep the next event 8-byte aligned: views into the slab stay cheap to copy.
  poolUsed = (p + 7) & ~7;
  // A plain view: Buffer#subarray costs twice as much per event, and nothing downstream needs Buffer methods.
  return new Uint8Array(b.buffer, b.byteOffset + start, p - start);
}

/**
 * An EventFrame{batch} from already-encoded Events (encodeBatchProto's bytes, built with one allocation and one
 * copy per event): tag, length, then each event as tag, length, bytes.
 */
export function batchFrameProto(events: readonly Uint8Array[]): Buffer {
  let inner = 0;
  for (let i = 0; i < events.length; i++) {
    const n = events[i]!.length;
    inner += 1 + varintBytes(n) + n;
  }
  const out = Buffer.allocUnsafe(1 + varintBytes(inner) + inner);
  out[0] = 0x0a; // EventFrame.batch = 1, length-delimited
  let p = writeVarint(out, 1, inner);
  for (let i = 0; i < events.length; i++) {
    const ev = events[i]!;
    out[p++] = 0x0a; // EventBatch.events = 1, length-delimited
    p = writeVarint(out, p, ev.length);
    out.set(ev, p);
    p += ev.length;
  }
  return out;
}

const FIELD_NAMES = ['', 'seq', 'at', 'type', 'job', 'taskId', 'agentId', 'state', 'data'];

/**
 * The JSON text of a logged event (`borealis.v1.json`'s object for it), straight from its protobuf: data_json is
 * already JSON and goes in as it is, so neither the data nor the event is parsed or re-serialised. Field order and
 * values are those of JSON.stringify on the published event (type, job, taskId, agentId, state, data, seq, at).
 */
export function eventJsonFromEncoded(bytes: Uint8Array): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let seq = 0;
  let at = 0;
  let state = 0;
  const strs: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined];
  let pos = 0;
  const end = b.length;
  while (pos < end) {
    const tag = b[pos++]!;
    const field = tag >> 3;
    let v = 0;
    let mul = 1;
    for (let c = 0x80; c & 0x80; mul *= 128) {
      if (pos >= end) throw new BorealisError(ErrorCodes.INTERNAL, 'event log record is not an Event: truncated varint');
      c = b[pos++]!;
      v += (c & 0x7f) * mul;
    }
    if ((tag & 7) === 0) {
      if (field === 1) seq = v;
      else if (field === 2) at = v;
      else if (field === 7) state = v;
    } else if ((tag & 7) === 2) {
      if (pos + v > end) throw new BorealisError(ErrorCodes.INTERNAL, 'event log record is not an Event: field runs past its end');
      if (field >= 3 && field <= 8) strs[field] = b.toString('utf8', pos, pos + v);
      pos += v;
    } else {
      throw new BorealisError(ErrorCodes.INTERNAL, `event log record is not an Event: wire type ${tag & 7}`);
    }
  }
  let out = `{"type":${JSON.stringify(strs[3] ?? '')}`;
  for (let f = 4; f <= 6; f++) if (strs[f]) out += `,"${FIELD_NAMES[f]}":${JSON.stringify(strs[f])}`;
  if (state !== 0) {
    const s = taskStateFromWire(state);
    if (s) out += `,"state":"${s}"`;
  }
  if (strs[8]) out += `,"data":${strs[8]}`;
  return `${out},"seq":${seq},"at":${at}}`;
}
