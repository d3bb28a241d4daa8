import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { type BorealisError, ClosedError } from '../api/errors.js';
import type { EventLog } from './log.js';
import { EVENT_MAGIC, HEADER_BYTES, MAX_PAYLOAD_BYTES, decodeFrame, logCorruption, logIoError } from './log-format.js';
import type { Segment } from './segment.js';

/** Consecutive events read from the log: seqs first, first + 1, ...; payloads are protobuf Events. */
export interface LogChunk {
  first: number;
  payloads: Uint8Array[];
  /** Sum of the payloads' lengths. */
  bytes: number;
}

/**
 * One read(2) per call at most this big (unless one record is bigger): large enough that a replay runs at disk or
 * page-cache speed, small enough that a call's parsing stays well under a millisecond of the server's thread.
 */
export const READ_CHUNK_BYTES = 256 * 1024;

/**
 * A reader of the log's segments: `read(afterSeq)` returns the next events in bounded chunks, asynchronously (one
 * read(2) through libuv per call), keeping its file and position between calls so a long replay reads each byte
 * once. One call at a time. Every record's CRC and seq are checked; a damaged one throws BRL_ERR_INTERNAL naming
 * the file and offset, and the log stops serving that segment (see EventLog.discardThrough).
 */
export class LogCursor {
  readonly #log: EventLog;
  #seg: Segment | null = null;
  #fh: FileHandle | null = null;
  /** File offset of the record with seq #seq. */
  #offset = 0;
  #seq = 0;
  #closed = false;

  constructor(log: EventLog) {
    this.#log = log;
  }

  /**
   * Up to `maxEvents` events (and about `maxBytes` of payload) after `afterSeq`: [] when none is written yet;
   * 'gone' when they are older than the log's retention.
   */
  async read(afterSeq: number, maxEvents: number, maxBytes = Number.POSITIVE_INFINITY): Promise<LogChunk | 'gone'> {
    const target = afterSeq + 1;
    for (;;) {
      if (this.#closed) throw new ClosedError('event log cursor');
      const log = this.#log;
      if (target < log.firstSeq) return 'gone';
      const seg = log.segmentFor(target);
      if (seg === undefined) return { first: target, payloads: [], bytes: 0 };
      if (seg !== this.#seg) {
        if (!(await this.#openSegment(seg))) continue;
      }
      if (this.#seq > target || seg.index.floor(target).seq > this.#seq) {
        const at = seg.index.floor(target);
        this.#seq = at.seq;
        this.#offset = at.offset;
      }
      const chunk = await this.#readChunk(seg, target, maxEvents, maxBytes);
      if (chunk !== null) return chunk;
      // Only records before the target in that chunk: read on.
    }
  }

  /** Idempotent; a read in progress fails with BRL_ERR_CLOSED. */
  close(): void {
    this.#closed = true;
    this.#seg = null;
    const fh = this.#fh;
    this.#fh = null;
    void fh?.close().catch(() => undefined);
  }

  /** Opens `seg`; false when it was deleted meanwhile (the caller's next check says 'gone'). */
  async #openSegment(seg: Segment): Promise<boolean> {
    const old = this.#fh;
    this.#fh = null;
    this.#seg = null;
    void old?.close().catch(() => undefined);
    let fh: FileHandle;
    try {
      fh = await open(seg.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && this.#log.segmentFor(seg.firstSeq) !== seg) return false;
      throw this.#damaged(seg, logIoError(`open of ${seg.path}`, err));
    }
    if (this.#closed) {
      void fh.close().catch(() => undefined);
      throw new ClosedError('event log cursor');
    }
    this.#fh = fh;
    this.#seg = seg;
    this.#seq = seg.firstSeq;
    this.#offset = 0;
    return true;
  }

  async #readChunk(seg: Segment, target: number, maxEvents: number, maxBytes: number): Promise<LogChunk | null> {
    const end = seg.bytes;
    if (this.#offset >= end) {
      throw this.#damaged(seg, logCorruption(seg.path, this.#offset, `the segment ends at seq ${this.#seq - 1}; seq ${target} should be in it`));
    }
    let want = Math.min(end - this.#offset, READ_CHUNK_BYTES);
    let buf = Buffer.allocUnsafe(want);
    let got = await this.#readAt(buf, want, this.#offset);
    // A record larger than a chunk: read it whole.
    if (got >= HEADER_BYTES) {
      const len = HEADER_BYTES + buf.readUInt32LE(8);
      if (len > got) {
        if (len - HEADER_BYTES > MAX_PAYLOAD_BYTES || this.#offset + len > end) {
          throw this.#damaged(seg, logCorruption(seg.path, this.#offset, `record length ${len - HEADER_BYTES} runs past the segment's written end`));
        }
        want = len;
        buf = Buffer.allocUnsafe(want);
        got = await this.#readAt(buf, want, this.#offset);
      }
    }
    if (this.#closed) throw new ClosedError('event log cursor');
    const payloads: Uint8Array[] = [];
    let bytes = 0;
    let off = 0;
    while (off < got && payloads.length < maxEvents && bytes < maxBytes) {
      if (got - off < HEADER_BYTES || HEADER_BYTES + buf.readUInt32LE(off + 8) > got - off) break; // the rest is in the next chunk
      const f = decodeFrame(buf, off, EVENT_MAGIC);
      // Bytes below seg.bytes were written whole: any damage here is corruption, not a torn write.
      if (!f.ok) throw this.#damaged(seg, logCorruption(seg.path, this.#offset + off, f.damage));
      if (f.seq !== this.#seq) throw this.#damaged(seg, logCorruption(seg.path, this.#offset + off, `record has seq ${f.seq}, expected ${this.#seq}`));
      seg.index.note(f.seq, this.#offset + off);
      if (f.seq >= target) {
        payloads.push(f.payload);
        bytes += f.payload.length;
      }
      this.#seq++;
      off = f.next;
    }
    if (off === 0) throw this.#damaged(seg, logCorruption(seg.path, this.#offset, 'no whole record where one should start'));
    this.#offset += off;
    return payloads.length === 0 ? null : { first: target, payloads, bytes };
  }

  async #readAt(buf: Buffer, want: number, position: number): Promise<number> {
    let got = 0;
    while (got < want) {
      const fh = this.#fh;
      if (fh === null) throw new ClosedError('event log cursor');
      let n: number;
      try {
        n = (await fh.read(buf, got, want - got, position + got)).bytesRead;
      } catch (err) {
        if (this.#closed) throw new ClosedError('event log cursor');
        throw this.#damaged(this.#seg!, logIoError(`read of ${this.#seg!.path} at offset ${position + got}`, err));
      }
      if (n === 0) break; // shorter than the log believes: caught by the parse
      got += n;
    }
    return got;
  }

  #damaged(seg: Segment, err: BorealisError): BorealisError {
    this.#log.discardThrough(seg, err);
    return err;
  }
}
