import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { corruptionError, fsyncDir, parseSeqName, seqName, writeFully } from './files.js';
import { RECORD_MAGIC, decodeFrame } from './record.js';
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
      throw corruptionError(file, off, `record has seq ${frame.seq}, expected ${expected} (sequence not continuous)`);
    }
    onRecord?.(frame.seq, frame.payload);
    expected++;
    off = frame.next;
  }
  return { end: off, count: expected - firstSeq, lastSeq: expected - 1, damage: null };
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
