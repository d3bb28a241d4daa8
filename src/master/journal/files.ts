import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { BorealisError, ErrorCodes, JournalCorruptError } from '../../api/errors.js';

/** Zero-padded to 20 digits (the width of a u64) so names sort in sequence order as plain strings too. */
export function seqName(prefix: string, seq: number, suffix: string): string {
  return `${prefix}${String(seq).padStart(20, '0')}${suffix}`;
}

/** The sequence number in a `<prefix><20 digits><suffix>` name, or null for any other file. */
export function parseSeqName(name: string, prefix: string, suffix: string): number | null {
  if (!name.startsWith(prefix) || !name.endsWith(suffix)) return null;
  const digits = name.slice(prefix.length, name.length - suffix.length);
  if (!/^\d{20}$/.test(digits)) return null;
  const seq = Number(digits);
  return Number.isSafeInteger(seq) ? seq : null;
}

/** Writes all of `buf` at `position`, looping over short writes (a disk filling up can cause one). */
export async function writeFully(handle: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`write made no progress at offset ${position + done}`);
    done += bytesWritten;
  }
}

/**
 * fsync of a directory makes file creations, renames and deletions in it durable. Without it a new
 * segment or a renamed snapshot can vanish after power loss even though its own data was synced.
 * Windows cannot open directories for sync and has no such requirement.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A damaged or inconsistent journal (or event log: `subject`): BRL_ERR_INTERNAL naming the file and byte offset. */
export function corruptionError(file: string, offset: number, detail: string, subject = 'journal'): BorealisError {
  return new BorealisError(ErrorCodes.INTERNAL, `${subject} corrupt: ${basename(file)} at offset ${offset}: ${detail}`);
}

/**
 * Journal damage that open must not repair: BRL_ERR_JOURNAL_CORRUPT naming the file and byte offset,
 * followed by what an operator can do about it. The message says the files were left as they were.
 */
export function journalCorruptError(file: string, offset: number, detail: string, remedy: string): JournalCorruptError {
  return new JournalCorruptError(file, offset, `journal corrupt: ${file} at offset ${offset}: ${detail}. ${remedy}`);
}

/** An I/O failure of the journal (or `subject`); `cause` keeps the original errno error for logs. */
export function ioError(what: string, cause: unknown, subject = 'journal'): BorealisError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const err = new BorealisError(ErrorCodes.INTERNAL, `${subject} ${what} failed: ${reason}`);
  err.cause = cause;
  return err;
}
