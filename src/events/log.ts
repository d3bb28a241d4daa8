import { randomUUID } from 'node:crypto';
import { closeSync, close as closeFd, fdatasync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type BorealisError, ClosedError, InvalidArgumentError } from '../api/errors.js';
import { fsyncDir } from '../master/journal/files.js';
import { LogCursor } from './log-cursor.js';
import {
  CLEAN_FILE,
  EPOCH_FILE,
  EVENT_MAGIC,
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  decodeFrame,
  logIoError,
  parseSegmentName,
  segmentName,
  writeRecord,
} from './log-format.js';
import { type Segment, SparseIndex } from './segment.js';
import { definedOnly } from '../util/defined-only.js';

export interface EventLogOptions {
  /** Start a new segment once the active one reaches this many bytes. */
  segmentBytes?: number;
  /** Drop the oldest segments while the log holds more than this (the active segment is never dropped). */
  retainBytes?: number;
  /** Drop a segment once every event in it is older than the newest `retainEvents` (default: no count bound). */
  retainEvents?: number;
  /** Problems the log survived (a segment it could not delete, a damaged segment it stopped serving). */
  onError?: (err: BorealisError) => void;
}

export const EVENT_LOG_DEFAULTS = {
  // 16 MiB is ~140,000 events of ~120 B: a roll (an open and an async fdatasync) every second or so at 200k/s.
  segmentBytes: 16 * 1024 * 1024,
  // 256 MiB keeps ~2M events: hours of a busy cluster for a reader to come back, and disk that stays small.
  retainBytes: 256 * 1024 * 1024,
  retainEvents: Number.POSITIVE_INFINITY,
};

/** EventLogRecovery.newEpoch of a log opened for the first time (nothing to recover: not worth a warning). */
export const NEW_EVENT_LOG = 'new event log';

/** What open found and did. */
export interface EventLogRecovery {
  /** Why the log starts a new epoch (readers of the old one resync), or null when the epoch carried over. */
  newEpoch: string | null;
  /** Bytes cut from a torn tail of the last segment (a write that never completed, so no reader saw it). */
  truncatedBytes: number;
  /** The damage found at the end of the last segment, if any: file, offset and kind. */
  damage: { file: string; offset: number; reason: string } | null;
}

export interface EventLogStats {
  firstSeq: number;
  writtenSeq: number;
  segments: number;
  /** Bytes on disk across segments. */
  bytes: number;
  /** write(2) calls and bytes since open. */
  writes: number;
  bytesWritten: number;
}

type FilledOptions = typeof EVENT_LOG_DEFAULTS;

/** Write buffer to start with; it grows to the largest batch between two flushes. */
const INITIAL_PENDING_BYTES = 256 * 1024;

interface Meta {
  epoch: string;
  bootId: string;
}

/**
 * The durable half of the event bus: every event, protobuf-encoded, appended to segment files under the master's
 * data dir, so a reader can resume by seq across a master restart and far beyond the in-memory ring.
 *
 * Writes. `append` copies a record into a batch buffer; `flush` writes the batch with one positional write(2). The
 * bus flushes before any reader outside the process can see the batch's events, so a seq that a reader has seen is
 * always in the log: after a restart the log continues after it and never hands it to a different event. The OS
 * page cache is enough for that (it survives a crash of this process); making the state durable against power loss
 * is the journal's job (fdatasync per group commit), and the events are re-derivable from it. A reboot without a
 * clean close, which may have dropped page-cache writes, starts a new epoch instead (see open): readers resync.
 *
 * Files are bounded: segments roll at `segmentBytes`, and the oldest are deleted past `retainBytes` or
 * `retainEvents`, so disk use stays within retainBytes + segmentBytes. A reader whose seq has been deleted is told
 * "gone" and resyncs.
 *
 * Reads go through LogCursor (async, bounded chunks, never the writer's thread for long). A damaged record found by
 * a reader stops that segment and everything before it from being served (the file is kept as *.corrupt): the
 * reader gets a clear error, later readers of those seqs a resync, and the master keeps running.
 */
export class EventLog {
  readonly dir: string;
  readonly epoch: string;
  readonly recovery: EventLogRecovery;
  readonly #o: FilledOptions;
  readonly #onError: (err: BorealisError) => void;
  readonly #segments: Segment[];
  #active: Segment;
  #fd: number;
  #pending = Buffer.allocUnsafe(INITIAL_PENDING_BYTES);
  #pendingLen = 0;
  #lastSeq: number;
  #writtenSeq: number;
  #totalBytes: number;
  #failure: BorealisError | null = null;
  #closing: Promise<void> | null = null;
  readonly #syncing = new Set<Promise<void>>();
  #writes = 0;
  #bytesWritten = 0;

  private constructor(dir: string, o: FilledOptions, onError: (err: BorealisError) => void, epoch: string, segments: Segment[], fd: number, recovery: EventLogRecovery) {
    this.dir = dir;
    this.#o = o;
    this.#onError = onError;
    this.epoch = epoch;
    this.#segments = segments;
    this.#active = segments.at(-1)!;
    this.#fd = fd;
    this.#lastSeq = this.#active.lastSeq;
    this.#writtenSeq = this.#lastSeq;
    this.#totalBytes = segments.reduce((n, s) => n + s.bytes, 0);
    this.recovery = recovery;
  }

  /**
   * Opens (creating if needed) the log in `dir`. Only the last segment is read (to find the last seq and cut a torn
   * tail); older ones are checked by their CRCs when a reader reads them. The epoch carries over from the last open
   * unless continuing it could reuse a seq a reader has seen: the log is new or its epoch file unreadable, the last
   * segment is damaged other than by a torn final write, or the machine rebooted since a close that was not clean.
   * A new epoch starts empty, after the old last seq.
   */
  static async open(dir: string, options: EventLogOptions = {}): Promise<EventLog> {
    const o = checkOptions(options);
    const onError = options.onError ?? ((err) => process.emitWarning(err.message, 'BorealisWarning'));
    await mkdir(dir, { recursive: true });
    const [bootId, meta, cleanSeq, names] = await Promise.all([readBootId(), readMeta(dir), readClean(dir), readdir(dir)]);
    const segments: Segment[] = [];
    for (const name of names.sort()) {
      const firstSeq = parseSegmentName(name);
      if (firstSeq === null) continue;
      const path = join(dir, name);
      segments.push({ path, firstSeq, bytes: (await stat(path)).size, lastSeq: firstSeq - 1, index: new SparseIndex(firstSeq) });
    }
    for (let i = 0; i + 1 < segments.length; i++) segments[i]!.lastSeq = segments[i + 1]!.firstSeq - 1;

    const recovery: EventLogRecovery = { newEpoch: null, truncatedBytes: 0, damage: null };
    let lastSeq = 0;
    let torn = true;
    const last = segments.at(-1);
    if (last !== undefined) {
      const buf = await readFile(last.path);
      let off = 0;
      let expected = last.firstSeq;
      while (off < buf.length) {
        const f = decodeFrame(buf, off, EVENT_MAGIC);
        if (!f.ok || f.seq !== expected) {
          const reason = f.ok ? `record has seq ${f.seq}, expected ${expected}` : f.damage;
          recovery.damage = { file: basename(last.path), offset: off, reason };
          // A write cut short leaves a prefix of a frame at the very end: runs past the end of the file, and no
          // whole frame after it (a bad length mid-file also "runs past the end", but whole frames follow it).
          torn = !f.ok && (f.damage === 'torn-header' || f.damage === 'torn-payload') && !hasFrameAfter(buf, off + 1);
          break;
        }
        last.index.note(f.seq, off);
        expected++;
        off = f.next;
      }
      recovery.truncatedBytes = buf.length - off;
      last.bytes = off;
      last.lastSeq = expected - 1;
      lastSeq = last.lastSeq;
    }

    if (recovery.damage !== null && !torn) {
      recovery.newEpoch = `damaged record in ${recovery.damage.file} at offset ${recovery.damage.offset} (${recovery.damage.reason})`;
    } else if (meta === null) recovery.newEpoch = segments.length === 0 ? NEW_EVENT_LOG : 'the epoch file is missing';
    else if ('error' in meta) recovery.newEpoch = `the epoch file is unreadable (${meta.error})`;
    else if (cleanSeq === -1) {
      recovery.newEpoch = 'the clean-close mark is unreadable';
    } else if (cleanSeq !== null && cleanSeq !== lastSeq) {
      recovery.newEpoch = `the log was closed at seq ${cleanSeq} but ends at seq ${lastSeq}`;
    } else if (cleanSeq === null && (bootId === '' || bootId !== meta.bootId)) {
      recovery.newEpoch = 'the machine restarted since the log was last written, without a clean close: writes still in the page cache may be lost';
    }
    const epoch = recovery.newEpoch === null && meta !== null && !('error' in meta) ? meta.epoch : randomUUID();

    if (recovery.newEpoch !== null) {
      // Nothing of the old epoch can be served under the new one; seqs keep increasing across it all the same.
      for (const s of segments) await unlink(s.path);
      segments.length = 0;
    }
    // The epoch (with this boot) is on disk, and the clean mark gone, before any event of this run is written.
    await writeMeta(dir, { epoch, bootId });
    if (cleanSeq !== null) await unlink(join(dir, CLEAN_FILE));
    await fsyncDir(dir);

    let fd: number;
    const active = segments.at(-1);
    if (active !== undefined) {
      // A plain fd, not a FileHandle: the write path is synchronous (see flush).
      fd = openSync(active.path, 'r+');
      try {
        if (recovery.truncatedBytes > 0) ftruncateSync(fd, active.bytes);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    } else {
      const path = join(dir, segmentName(lastSeq + 1));
      fd = openSync(path, 'wx');
      segments.push({ path, firstSeq: lastSeq + 1, bytes: 0, lastSeq, index: new SparseIndex(lastSeq + 1) });
    }
    const log = new EventLog(dir, o, onError, epoch, segments, fd, recovery);
    log.#applyRetention();
    return log;
  }

  /** Oldest seq still in the log (writtenSeq + 1 when it holds none). */
  get firstSeq(): number {
    return this.#segments[0]!.firstSeq;
  }

  /** Last seq appended (it may still be in the write buffer). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Last seq written to the file: what readers may read. */
  get writtenSeq(): number {
    return this.#writtenSeq;
  }

  get pendingBytes(): number {
    return this.#pendingLen;
  }

  get failure(): BorealisError | null {
    return this.#failure;
  }

  get stats(): EventLogStats {
    return {
      firstSeq: this.firstSeq,
      writtenSeq: this.#writtenSeq,
      segments: this.#segments.length,
      bytes: this.#totalBytes,
      writes: this.#writes,
      bytesWritten: this.#bytesWritten,
    };
  }

  /**
   * Copies the record into the write buffer (no I/O, except a write and a roll when the record would take the
   * active segment past `segmentBytes`): `flush` writes it. Seqs must come 1, 2, 3... after the log's last.
   * Throws once the log has failed or closed.
   */
  append(seq: number, payload: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    if (this.#closing) throw new ClosedError('event log');
    if (seq !== this.#lastSeq + 1) throw new InvalidArgumentError(`event log append out of order: seq ${seq} after ${this.#lastSeq}`);
    if (payload.length > MAX_PAYLOAD_BYTES) throw new InvalidArgumentError(`event of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    const used = this.#active.bytes + this.#pendingLen;
    if (used > 0 && used + HEADER_BYTES + payload.length > this.#o.segmentBytes) {
      // A segment never passes its size (unless one record does): its batch goes out, the next record starts a new one.
      this.flush();
      try {
        this.#roll();
      } catch (err) {
        throw this.#fail(logIoError(`roll to a new segment after seq ${this.#writtenSeq}`, err));
      }
    }
    const need = this.#pendingLen + HEADER_BYTES + payload.length;
    if (need > this.#pending.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#pending.length * 2));
      this.#pending.copy(grown, 0, 0, this.#pendingLen);
      this.#pending = grown;
    }
    // Noted before the write: readers only look up seqs <= writtenSeq, whose offsets are on disk by then.
    this.#active.index.note(seq, this.#active.bytes + this.#pendingLen);
    this.#pendingLen = writeRecord(this.#pending, this.#pendingLen, seq, payload);
    this.#lastSeq = seq;
  }

  /**
   * Writes the buffered records with one positional write(2) into the page cache. Synchronous on purpose: it is a
   * memcpy into the kernel, and it must be done before the caller shows the events to anyone. A failure poisons
   * the log (the caller stops logging) and throws.
   */
  flush(): void {
    if (this.#failure) throw this.#failure;
    const len = this.#pendingLen;
    if (len === 0) return;
    const seg = this.#active;
    try {
      let done = 0;
      while (done < len) {
        const n = writeSync(this.#fd, this.#pending, done, len - done, seg.bytes + done);
        if (n <= 0) throw new Error(`write made no progress at offset ${seg.bytes + done}`);
        done += n;
      }
    } catch (err) {
      throw this.#fail(logIoError(`write of ${len} bytes to ${basename(seg.path)} at offset ${seg.bytes}`, err));
    }
    this.#pendingLen = 0;
    seg.bytes += len;
    seg.lastSeq = this.#lastSeq;
    this.#writtenSeq = this.#lastSeq;
    this.#totalBytes += len;
    this.#writes++;
    this.#bytesWritten += len;
  }

  /** A reader over the segments (see LogCursor); close it when done. */
  cursor(): LogCursor {
    return new LogCursor(this);
  }

  /** @internal The segment holding `seq`, for cursors (undefined outside firstSeq..writtenSeq). */
  segmentFor(seq: number): Segment | undefined {
    const s = this.#segments;
    if (seq < this.firstSeq || seq > this.#writtenSeq) return undefined;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (s[mid]!.firstSeq <= seq) lo = mid;
      else hi = mid - 1;
    }
    return s[lo];
  }

  /**
   * @internal A reader found `seg` damaged (or missing): it and every older segment stop being served, so readers
   * of those seqs resync instead of failing over and over. The damaged file is kept as `*.corrupt` for a person.
   */
  discardThrough(seg: Segment, err: BorealisError): void {
    const i = this.#segments.indexOf(seg);
    if (i < 0) return;
    this.#onError(err);
    if (seg === this.#active) {
      try {
        this.flush();
        this.#roll();
      } catch {
        return; // the log failed: the bus stops using it
      }
    }
    for (const s of this.#segments.splice(0, i + 1)) {
      this.#totalBytes -= s.bytes;
      const done = s === seg ? rename(s.path, `${s.path}.corrupt`) : unlink(s.path);
      done.catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.#onError(logIoError(`removal of ${basename(s.path)}`, e));
      });
    }
  }

  /**
   * Writes what is buffered, syncs every segment written since open and leaves the clean mark, so the next open
   * (even after a reboot) continues this epoch. A failed log just closes its file. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#failure) {
        try {
          this.flush();
        } catch {
          // reported by #fail; no clean mark below
        }
      }
      await Promise.all(this.#syncing);
      const fd = this.#fd;
      if (this.#failure) {
        closeSync(fd);
        return;
      }
      try {
        await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
      } finally {
        closeSync(fd);
      }
      await writeSynced(join(this.dir, CLEAN_FILE), `${JSON.stringify({ lastSeq: this.#writtenSeq })}\n`);
      await fsyncDir(this.dir);
    })();
    return this.#closing;
  }

  /** Seals the active segment and starts the next at writtenSeq + 1. */
  #roll(): void {
    const firstSeq = this.#writtenSeq + 1;
    const path = join(this.dir, segmentName(firstSeq));
    // 'wx': a file already there is never overwritten (it would be another log's, or a bug's).
    const fd = openSync(path, 'wx');
    const old = this.#fd;
    this.#fd = fd;
    this.#active = { path, firstSeq, bytes: 0, lastSeq: firstSeq - 1, index: new SparseIndex(firstSeq) };
    this.#segments.push(this.#active);
    // Synced off the thread, so a clean close only waits for the last segment; the kernel writes it back anyway.
    const p = new Promise<void>((resolve) => fdatasync(old, () => closeFd(old, () => resolve())));
    this.#syncing.add(p);
    void p.then(() => this.#syncing.delete(p));
    this.#applyRetention();
  }

  #applyRetention(): void {
    const s = this.#segments;
    while (s.length > 1) {
      const overBytes = this.#totalBytes > this.#o.retainBytes;
      const overCount = this.#writtenSeq - s[0]!.lastSeq >= this.#o.retainEvents;
      if (!overBytes && !overCount) break;
      const old = s.shift()!;
      this.#totalBytes -= old.bytes;
      // Readers with the file open keep reading it (POSIX unlink); new ones see firstSeq moved and resync.
      unlink(old.path).catch((err: unknown) => this.#onError(logIoError(`removal of ${basename(old.path)} (retention)`, err)));
    }
  }

  #fail(err: BorealisError): BorealisError {
    this.#failure ??= err;
    return this.#failure;
  }
}

function checkOptions(opts: EventLogOptions): FilledOptions {
  // onError is a callback, not a setting with a default: it stays out of the filled options.
  const { onError: _onError, ...rest } = opts;
  const o = { ...EVENT_LOG_DEFAULTS, ...definedOnly(rest) } as FilledOptions;
  for (const k of ['segmentBytes', 'retainBytes'] as const) {
    if (!Number.isSafeInteger(o[k]) || o[k] < 1) throw new InvalidArgumentError(`event log ${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.retainEvents !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(o.retainEvents) || o.retainEvents < 1)) {
    throw new InvalidArgumentError(`event log retainEvents must be a positive integer, got ${o.retainEvents}`);
  }
  return o;
}

/** Whether a whole, checksummed frame starts anywhere in `buf` from `from` on. */
function hasFrameAfter(buf: Buffer, from: number): boolean {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(EVENT_MAGIC);
  for (let at = buf.indexOf(magic, from); at >= 0; at = buf.indexOf(magic, at + 1)) {
    if (decodeFrame(buf, at, EVENT_MAGIC).ok) return true;
  }
  return false;
}

/** Linux's id of this boot: it changes on every reboot, and only a reboot can lose page-cache writes. '' elsewhere. */
async function readBootId(): Promise<string> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return '';
  }
}

async function readMeta(dir: string): Promise<Meta | { error: string } | null> {
  let text: string;
  try {
    text = await readFile(join(dir, EPOCH_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { error: (err as Error).message };
  }
  try {
    const m = JSON.parse(text) as Partial<Meta>;
    // The shape an epoch must have on the wire (src/events/query.ts accepts exactly this).
    if (typeof m.epoch !== 'string' || !/^[0-9a-f-]{1,64}$/i.test(m.epoch) || typeof m.bootId !== 'string') return { error: 'no valid epoch in it' };
    return { epoch: m.epoch, bootId: m.bootId };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

async function readClean(dir: string): Promise<number | null> {
  try {
    const v = (JSON.parse(await readFile(join(dir, CLEAN_FILE), 'utf8')) as { lastSeq?: unknown }).lastSeq;
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : -1;
  } catch (err) {
    // A clean mark we cannot read is not a clean close.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : -1;
  }
}

/** epoch.tmp -> fsync -> rename: the epoch file is always whole, old or new. */
async function writeMeta(dir: string, meta: Meta): Promise<void> {
  const tmp = join(dir, `${EPOCH_FILE}.tmp`);
  await writeSynced(tmp, `${JSON.stringify(meta)}\n`);
  await rename(tmp, join(dir, EPOCH_FILE));
}

async function writeSynced(path: string, text: string): Promise<void> {
  const h = await open(path, 'w');
  try {
    await h.writeFile(text, 'utf8');
    await h.sync();
  } finally {
    await h.close();
  }
}
