import { readFile, readdir, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BorealisError, ClosedError, InvalidArgumentError } from '../../api/errors.js';
import { fsyncDir, ioError, journalCorruptError } from './files.js';
import { MAX_PAYLOAD_BYTES, RECORD_MAGIC, encodeFrame, encodeTextFrame } from './record.js';
import { recover } from './recovery.js';
import type { RecoveryReport, SegmentInfo } from './recovery.js';
import { SegmentWriter, scanSegment } from './segment.js';
import { removeOlderSnapshots, writeSnapshot } from './snapshot.js';
import type { Snapshot } from './snapshot.js';
import { definedOnly } from '../../util/defined-only.js';

export interface JournalOptions {
  /**
   * fdatasync each batch before resolving its appends (default true). With false an append is
   * acknowledged once it is in the OS page cache: it survives a process crash, not a power loss.
   */
  fsync?: boolean;
  /** Upper bound on one batch's write; a single larger record still goes alone. Default 4 MiB. */
  maxBatchBytes?: number;
  /** Roll to a new segment once the current one reaches this size. Default 64 MiB. */
  segmentBytes?: number;
}

export interface JournalRecord {
  seq: number;
  payload: Uint8Array;
}

export interface JsonRecord<T> {
  seq: number;
  value: T;
}

export interface JournalStats {
  /** Records made durable since open. */
  appended: number;
  /** Write batches since open; each is one write and, with fsync on, one fdatasync. */
  batches: number;
  /** fdatasync calls on segments (0 with fsync off). */
  fsyncs: number;
  /** Frame bytes written since open (headers included). */
  bytes: number;
  /** Last seq handed out (it may still be in flight). */
  lastSeq: number;
  /** Last seq known to be on disk. */
  durableSeq: number;
  segments: number;
}

interface Pending {
  seq: number;
  frame: Buffer;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
}

const DEFAULTS = { fsync: true, maxBatchBytes: 4 * 1024 * 1024, segmentBytes: 64 * 1024 * 1024 };

/**
 * The master's durable, append-only journal.
 *
 * Group commit: an fsync costs about the same for one record as for a thousand, so appends that
 * arrive while a write+fsync is in flight wait in `pending` and go out together as the next single
 * write and single fsync. Throughput then scales with concurrency instead of being capped at one
 * record per disk flush, and no append waits for a timer.
 *
 * A failed write or fsync poisons the journal: after a failed fsync the kernel may have dropped the
 * dirty pages, so retrying could report records durable that are not. Every append in the failed
 * batch and every later one rejects with BRL_ERR_INTERNAL; reopening recovers from what is on disk.
 */
export class Journal {
  private readonly opts: Required<JournalOptions>;
  private readonly segments: SegmentInfo[];
  private active: SegmentWriter;
  private snap: Snapshot | null;
  private nextSeq: number;
  private durable: number;
  private pending: Pending[] = [];
  private draining = false;
  private lastAppend: Promise<number> | null = null;
  /** Serialises the file operations of batches, segment rolls and compaction. */
  private ioTail: Promise<void> = Promise.resolve();
  private failure: BorealisError | null = null;
  private closing: Promise<void> | null = null;
  private counters = { appended: 0, batches: 0, fsyncs: 0, bytes: 0 };
  private readonly replayFrom: { segments: SegmentInfo[]; afterSeq: number };

  private constructor(
    readonly dir: string,
    opts: Required<JournalOptions>,
    segments: SegmentInfo[],
    active: SegmentWriter,
    snapshot: Snapshot | null,
    /** What open found and repaired (tail truncation, skipped snapshots). */
    readonly recovered: RecoveryReport,
  ) {
    this.opts = opts;
    this.segments = segments.map((s) => ({ ...s }));
    this.active = active;
    this.snap = snapshot;
    this.nextSeq = recovered.lastSeq + 1;
    this.durable = recovered.lastSeq;
    this.replayFrom = { segments, afterSeq: recovered.snapshotSeq };
  }

  /** Opens (creating if needed) the journal in `dir`, verifying and repairing it first. */
  static async open(dir: string, options: JournalOptions = {}): Promise<Journal> {
    const opts = { ...DEFAULTS, ...definedOnly(options) };
    for (const key of ['maxBatchBytes', 'segmentBytes'] as const) {
      if (!Number.isSafeInteger(opts[key]) || opts[key] <= 0) {
        throw new InvalidArgumentError(`journal option ${key} must be a positive integer, got ${opts[key]}`);
      }
    }
    const r = await recover(dir, opts.fsync);
    return new Journal(dir, opts, r.segments, r.active, r.snapshot, r.report);
  }

  /** The snapshot loaded at open or written by the last compact(); null if there is none. */
  get snapshot(): Snapshot | null {
    return this.snap;
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get stats(): JournalStats {
    return { ...this.counters, lastSeq: this.nextSeq - 1, durableSeq: this.durable, segments: this.segments.length };
  }

  /** Appends one record (copied at once); resolves with its seq once the record is on disk. */
  append(payload: Uint8Array): Promise<number> {
    if (!(payload instanceof Uint8Array)) return Promise.reject(new InvalidArgumentError('journal payload must be a Uint8Array'));
    const refused = this.refusal(payload.length);
    if (refused) return Promise.reject(refused);
    const seq = this.nextSeq++;
    return this.enqueue(seq, encodeFrame(RECORD_MAGIC, seq, payload));
  }

  /** Appends `value` as JSON (UTF-8). */
  appendJson(value: unknown): Promise<number> {
    const text = JSON.stringify(value);
    if (text === undefined) return Promise.reject(new InvalidArgumentError('journal value has no JSON form'));
    const refused = this.refusal(Buffer.byteLength(text, 'utf8'));
    if (refused) return Promise.reject(refused);
    const seq = this.nextSeq++;
    return this.enqueue(seq, encodeTextFrame(RECORD_MAGIC, seq, text));
  }

  /** Resolves once every append made so far is durable (rejects if one of them failed). */
  async sync(): Promise<void> {
    if (this.lastAppend) await this.lastAppend;
  }

  /**
   * The records recovered at open that come after the snapshot, in order. It reads the segments as
   * verified at open (later appends are not included), so run it before compact(), which may delete them.
   */
  async *replay(): AsyncIterable<JournalRecord> {
    const { segments, afterSeq } = this.replayFrom;
    for (const seg of segments) {
      if (seg.end === 0) continue;
      let buf: Buffer;
      try {
        buf = await readFile(seg.path);
      } catch (err) {
        throw ioError(`replay of ${basename(seg.path)} (was it compacted away? replay before compact)`, err);
      }
      const records: JournalRecord[] = [];
      const scan = scanSegment(buf.subarray(0, seg.end), seg.path, seg.firstSeq, (seq, payload) => {
        if (seq > afterSeq) records.push({ seq, payload: new Uint8Array(payload) });
      });
      if (scan.damage) {
        const { offset, reason } = scan.damage;
        throw journalCorruptError(seg.path, offset, `${reason} (the file changed after open)`, 'Stop the master; the next open verifies the journal again.');
      }
      yield* records;
    }
  }

  /** replay() with each payload parsed as JSON. */
  async *replayJson<T = unknown>(): AsyncIterable<JsonRecord<T>> {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for await (const { seq, payload } of this.replay()) {
      yield { seq, value: JSON.parse(decoder.decode(payload)) as T };
    }
  }

  /** The snapshot's payload parsed as JSON, or null. */
  snapshotJson<T = unknown>(): JsonRecord<T> | null {
    if (!this.snap) return null;
    return { seq: this.snap.seq, value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(this.snap.payload)) as T };
  }

  /**
   * Compaction: durably stores `snapshotPayload` as the state as of `uptoSeq`, then deletes the
   * segments whose records are all <= uptoSeq and older snapshots. Waits for appends up to uptoSeq
   * to be durable first, so the snapshot never claims more than the log holds.
   */
  async compact(snapshotPayload: Uint8Array, uptoSeq: number): Promise<void> {
    if (this.closing) throw new ClosedError('journal');
    if (this.failure) throw this.failure;
    if (!(snapshotPayload instanceof Uint8Array)) throw new InvalidArgumentError('snapshot payload must be a Uint8Array');
    const floor = this.snap?.seq ?? 0;
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq < floor || uptoSeq > this.lastSeq || uptoSeq < 1) {
      throw new InvalidArgumentError(`compact uptoSeq must be an integer in [${Math.max(floor, 1)}, ${this.lastSeq}], got ${uptoSeq}`);
    }
    await this.sync();
    await this.exclusive(async () => {
      if (this.failure) throw this.failure;
      if (this.snap && uptoSeq < this.snap.seq) return; // a concurrent compact went further
      try {
        await writeSnapshot(this.dir, uptoSeq, snapshotPayload, this.opts.fsync);
      } catch (err) {
        throw ioError(`snapshot write at seq ${uptoSeq}`, err); // the old snapshot and segments still stand
      }
      this.snap = { seq: uptoSeq, payload: new Uint8Array(snapshotPayload) };
      // The active segment is never deleted; if the snapshot covers all of it, start a new one.
      if (this.active.size > 0 && this.durable <= uptoSeq) {
        try {
          await this.roll();
        } catch (err) {
          throw this.fail(ioError(`roll to a new segment after seq ${this.durable}`, err));
        }
      }
      let drop = 0;
      while (drop < this.segments.length - 1 && this.segments[drop + 1].firstSeq <= uptoSeq + 1) drop++;
      try {
        // Leftovers after a failure here are harmless: the snapshot covers them and open skips them.
        for (const seg of this.segments.splice(0, drop)) await unlink(seg.path);
        await removeOlderSnapshots(this.dir, await readdir(this.dir), uptoSeq);
        if (this.opts.fsync) await fsyncDir(this.dir);
      } catch (err) {
        throw ioError('removal of compacted files', err);
      }
    });
  }

  /** compact() with the state as JSON. */
  compactJson(state: unknown, uptoSeq: number): Promise<void> {
    const text = JSON.stringify(state);
    if (text === undefined) return Promise.reject(new InvalidArgumentError('snapshot state has no JSON form'));
    return this.compact(Buffer.from(text, 'utf8'), uptoSeq);
  }

  /** Flushes pending appends, then closes the files. Later appends reject with BRL_ERR_CLOSED. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.sync().catch(() => undefined); // a failure was already reported to those appends
      await this.exclusive(() => this.active.close());
    })();
    return this.closing;
  }

  private refusal(bytes: number): BorealisError | null {
    if (this.closing) return new ClosedError('journal');
    if (this.failure) return this.failure;
    if (bytes > MAX_PAYLOAD_BYTES) return new InvalidArgumentError(`journal payload of ${bytes} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
    return null;
  }

  private enqueue(seq: number, frame: Buffer): Promise<number> {
    const done = new Promise<number>((resolve, reject) => {
      this.pending.push({ seq, frame, resolve, reject });
    });
    this.lastAppend = done;
    if (!this.draining) {
      this.draining = true;
      // Start on a microtask so a synchronous burst of appends lands in the first batch too.
      queueMicrotask(() => void this.drain());
    }
    return done;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.failure) await this.exclusive(() => this.writeBatch());
    } catch (err) {
      this.fail(err instanceof BorealisError ? err : ioError('group commit', err)); // a bug, but never a hung append
    } finally {
      this.draining = false;
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.ioTail.then(fn);
    this.ioTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** One group commit: everything pending (up to maxBatchBytes) as one write and one fdatasync. */
  private async writeBatch(): Promise<void> {
    if (this.failure || this.pending.length === 0) return;
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length) {
      const len = this.pending[n].frame.length;
      if (n > 0 && bytes + len > this.opts.maxBatchBytes) break;
      bytes += len;
      n++;
    }
    const batch = this.pending.splice(0, n);
    const seg = this.active;
    const at = seg.size;
    try {
      await seg.append(n === 1 ? batch[0].frame : Buffer.concat(batch.map((p) => p.frame), bytes));
      if (this.opts.fsync) {
        await seg.sync();
        this.counters.fsyncs++;
      }
    } catch (err) {
      const failure = this.fail(ioError(`write of ${n} records to ${basename(seg.path)} at offset ${at}`, err));
      for (const p of batch) p.reject(failure);
      return;
    }
    this.counters.batches++;
    this.counters.appended += n;
    this.counters.bytes += bytes;
    this.durable = batch[n - 1].seq;
    for (const p of batch) p.resolve(p.seq);
    if (seg.size >= this.opts.segmentBytes) {
      try {
        await this.roll();
      } catch (err) {
        this.fail(ioError(`roll to a new segment after seq ${this.durable}`, err));
      }
    }
  }

  /** Seals the active segment (already synced) and starts the next one at durable + 1. Call inside exclusive(). */
  private async roll(): Promise<void> {
    const next = await SegmentWriter.create(this.dir, this.durable + 1, this.opts.fsync);
    const old = this.active;
    this.active = next;
    this.segments.push({ path: next.path, firstSeq: next.firstSeq, end: 0 });
    await old.close();
  }

  /** Poisons the journal and rejects everything still pending. */
  private fail(err: BorealisError): BorealisError {
    this.failure ??= err;
    for (const p of this.pending.splice(0)) p.reject(this.failure);
    return this.failure;
  }
}

