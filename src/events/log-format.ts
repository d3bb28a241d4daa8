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
import type { BorealisError } from '../api/errors.js';
import { corruptionError, ioError, parseSeqName, seqName } from '../master/journal/files.js';
import { HEADER_BYTES, writeFrameAt } from '../master/journal/record.js';

export { HEADER_BYTES, MAX_PAYLOAD_BYTES, decodeFrame } from '../master/journal/record.js';

export const EVENT_MAGIC = 0x454c5242; // "BRLE"
export const EPOCH_FILE = 'epoch';
export const CLEAN_FILE = 'clean';

export function segmentName(firstSeq: number): string {
  return seqName('seg-', firstSeq, '.log');
}

export function parseSegmentName(name: string): number | null {
  return parseSeqName(name, 'seg-', '.log');
}

/** Writes one record at `off` in `buf` (which must have room) and returns the offset after it. */
export function writeRecord(buf: Buffer, off: number, seq: number, payload: Uint8Array): number {
  return writeFrameAt(buf, off, EVENT_MAGIC, seq, payload);
}

/** A damaged or inconsistent event log: BRL_ERR_INTERNAL naming the file and byte offset. */
export function logCorruption(file: string, offset: number, detail: string): BorealisError {
  return corruptionError(file, offset, detail, 'event log');
}

/** An I/O failure of the event log; `cause` keeps the errno error for logs. */
export function logIoError(what: string, cause: unknown): BorealisError {
  return ioError(what, cause, 'event log');
}
