/**
 * The event log's files. A log directory (`<dataDir>/events/`) holds:
 *
 *   epoch                  {"epoch": UUID, "bootId": ...}: the epoch its seqs belong to, and the boot it was last opened in
 *   clean                  present only after a clean close (every segment fdatasync'ed); removed at open
 *   seg-<firstSeq>.log     segments of records, 20-digit names so they sort by seq as plain strings too
 *
 * A record is the journal's frame (src/master/journal/record.ts: magic, CRC-32C over length+seq+payload, length,
 * seq, payload) with its own magic, so an event segment can never be mistaken for a journal one; the payload is
 * the event as a protobuf `borealis.v1.Event`, the very bytes the stream sends.
 */
import { basename } from 'node:path';
import { BorealisError, ErrorCodes } from '../api/errors.js';
import { crc32c } from '../master/journal/crc32c.js';
import { parseSeqName, seqName } from '../master/journal/files.js';
import { HEADER_BYTES } from '../master/journal/record.js';

export { HEADER_BYTES, MAX_PAYLOAD_BYTES, decodeFrame } from '../master/journal/record.js';

export const EVENT_MAGIC = 0x454c5242; // "BRLE"
export const EPOCH_FILE = 'epoch';
export const CLEAN_FILE = 'clean';

const TWO_32 = 0x1_0000_0000;

export function segmentName(firstSeq: number): string {
  return seqName('seg-', firstSeq, '.log');
}

export function parseSegmentName(name: string): number | null {
  return parseSeqName(name, 'seg-', '.log');
}

/** Writes one record at `off` in `buf` (which must have room) and returns the offset after it. */
export function writeRecord(buf: Buffer, off: number, seq: number, payload: Uint8Array): number {
  const n = payload.length;
  buf.writeUInt32LE(EVENT_MAGIC, off);
  buf.writeUInt32LE(n, off + 8);
  buf.writeUInt32LE(seq >>> 0, off + 12);
  buf.writeUInt32LE(Math.floor(seq / TWO_32), off + 16);
  buf.set(payload, off + HEADER_BYTES);
  const end = off + HEADER_BYTES + n;
  buf.writeUInt32LE(crc32c(buf.subarray(off + 8, end)), off + 4);
  return end;
}

/** A damaged or inconsistent event log: BRL_ERR_INTERNAL naming the file and byte offset. */
export function logCorruption(file: string, offset: number, detail: string): BorealisError {
  return new BorealisError(ErrorCodes.INTERNAL, `event log corrupt: ${basename(file)} at offset ${offset}: ${detail}`);
}

/** An I/O failure of the event log; `cause` keeps the errno error for logs. */
export function logIoError(what: string, cause: unknown): BorealisError {
  const err = new BorealisError(ErrorCodes.INTERNAL, `event log ${what} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  err.cause = cause;
  return err;
}
