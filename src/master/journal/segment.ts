import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir, journalCorruptError, parseSeqName, seqName, writeFully } from './files.js';
import { HEADER_BYTES, RECORD_MAGIC, decodeFrame } from './record.js';
import type { FrameDamage } from './record.js';

/** A segment is named after the first sequence number it holds (or will hold, while empty). */
export function segmentName(firstSeq: number): string {
  return seqName('seg-', firstSeq, '.log');
}

export function parseSegmentName(name: string): number | null {
  return parseSeqName(name, 'seg-', '.log');
}

export interface SegmentScan {
  /** Bytes of intact, in-sequence records from the start of the file. */
  end: number;
  count: number;
  /** Last intact record's seq; firstSeq - 1 when there is none. */
  lastSeq: number;
  /** The first damaged frame, if the file holds anything after `end`. */
  damage: { offset: number; reason: FrameDamage } | null;
}

/**
 * Walks a segment's frames from offset 0 and stops at the first damaged one. A frame whose checksum
 * holds but whose seq is not the next one is never a torn write (we wrote it whole), so it throws
 * instead of being reported as damage a caller might truncate.
 */
export function scanSegment(
  buf: Buffer,
  file: string,
  firstSeq: number,
  onRecord?: (seq: number, payload: Buffer) => void,
): SegmentScan {
  let off = 0;
  let expected = firstSeq;
  while (off < buf.length) {
    const frame = decodeFrame(buf, off, RECORD_MAGIC);
    if (!frame.ok) return { end: off, count: expected - firstSeq, lastSeq: expected - 1, damage: { offset: off, reason: frame.damage } };
    if (frame.seq !== expected) {
      throw journalCorruptError(
        file,
        off,
        `record has seq ${frame.seq}, expected ${expected} (sequence not continuous)`,
        'The journal was not modified; restore the data directory from a backup.',
      );
    }
    onRecord?.(frame.seq, frame.payload);
    expected++;
    off = frame.next;
  }
  return { end: off, count: expected - firstSeq, lastSeq: expected - 1, damage: null };
}

const MAGIC_BYTES = Buffer.alloc(4);
MAGIC_BYTES.writeUInt32LE(RECORD_MAGIC);

/**
 * The first intact record after the damaged frame at `damageOffset`, or null. This is what tells a torn
 * tail from corruption: a crash can only garble the end of what was written, so a record that still
 * verifies after the damage means bytes were damaged in place. Candidates are found by their magic
 * (Buffer#indexOf is native, so even a 64 MiB segment scans fast) and must pass the CRC and carry a seq
 * that could follow `expectedSeq` there: k frames of at least HEADER_BYTES each fit between the damage
 * and the candidate, so its seq is at most expectedSeq + k. That bound keeps a frame-shaped run of bytes
 * inside a payload from passing as a record.
 */
export function findIntactRecordAfter(buf: Buffer, damageOffset: number, expectedSeq: number): { offset: number; seq: number } | null {
  for (let at = buf.indexOf(MAGIC_BYTES, damageOffset + 1); at !== -1; at = buf.indexOf(MAGIC_BYTES, at + 1)) {
    const frame = decodeFrame(buf, at, RECORD_MAGIC);
    if (!frame.ok) continue;
    const maxSeq = expectedSeq + Math.floor((at - damageOffset) / HEADER_BYTES);
    if (frame.seq >= expectedSeq && frame.seq <= maxSeq) return { offset: at, seq: frame.seq };
  }
  return null;
}

/** The one segment being appended to. Writes are positional at `size`, so the offset is always known. */
export class SegmentWriter {
  private constructor(
    readonly path: string,
    readonly firstSeq: number,
    private readonly handle: FileHandle,
    private bytes: number,
  ) {}

  /** Creates an empty segment. The directory is synced before any record can land in the file. */
  static async create(dir: string, firstSeq: number, fsync: boolean): Promise<SegmentWriter> {
    const path = join(dir, segmentName(firstSeq));
    const handle = await open(path, 'wx');
    try {
      if (fsync) await fsyncDir(dir);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new SegmentWriter(path, firstSeq, handle, 0);
  }

  /**
   * Reopens the last segment for appending after recovery, cutting it to `validBytes`: whatever lies
   * beyond was never acknowledged (see recovery.ts), and appending after garbage would hide new
   * records behind a frame recovery stops at.
   */
  static async reopen(path: string, firstSeq: number, validBytes: number, fileBytes: number, fsync: boolean): Promise<SegmentWriter> {
    const handle = await open(path, 'r+');
    try {
      if (fileBytes > validBytes) {
        await handle.truncate(validBytes);
        if (fsync) await handle.datasync();
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new SegmentWriter(path, firstSeq, handle, validBytes);
  }

  get size(): number {
    return this.bytes;
  }

  async append(buf: Uint8Array): Promise<void> {
    await writeFully(this.handle, buf, this.bytes);
    this.bytes += buf.length;
  }

  /**
   * fdatasync, not fsync: it flushes the data and the size needed to read it back, but skips
   * timestamps, which would otherwise cost an extra metadata write per commit.
   */
  async sync(): Promise<void> {
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
