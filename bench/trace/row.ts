/**
 * Per-line parsing shared by the format readers. Both traces are plain comma-separated text
 * without quoting, so a line is `split(',')`; a bad field throws RowError, which the stream
 * turns into a BadRow (with the line number) instead of dropping the row.
 */

import type { TraceSubmission } from './types.js';

/** One non-blank line in, its submissions (lazily, alibaba rows can hold thousands of instances) or 'skip' out. */
export type RowParser = (text: string, line: number) => Iterable<TraceSubmission> | 'skip';

export class RowError extends Error {}

const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER_RE = /^[+-]?\d+$/;

/** Splits a line, refusing the wrong arity: a shifted column would be read as the wrong quantity. */
export function splitRow(text: string, columns: number): string[] {
  const fields = text.split(',');
  if (fields.length !== columns) throw new RowError(`expected ${columns} columns, got ${fields.length}`);
  return fields.map((f) => f.trim());
}

/** No column of either trace is signed, so negatives are bad rows, not data. */
function checkSign(n: number, raw: string, column: string): number {
  if (n < 0) throw new RowError(`${column} ${raw} is negative`);
  return n === 0 ? 0 : n; // folds -0
}

export function decimal(raw: string, column: string): number {
  if (raw === '') throw new RowError(`${column} is empty`);
  if (!DECIMAL_RE.test(raw)) throw new RowError(`${column} ${JSON.stringify(raw)} is not a number`);
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new RowError(`${column} ${raw} is out of range`);
  return checkSign(n, raw, column);
}

export function integer(raw: string, column: string): number {
  if (raw === '') throw new RowError(`${column} is empty`);
  if (!INTEGER_RE.test(raw)) throw new RowError(`${column} ${JSON.stringify(raw)} is not an integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new RowError(`${column} ${raw} is out of range`);
  return checkSign(n, raw, column);
}

/** For columns the traces document as possibly empty. */
export function optional(
  raw: string,
  column: string,
  read: (raw: string, column: string) => number,
): number | undefined {
  return raw === '' ? undefined : read(raw, column);
}

export function atMost(n: number, max: number, column: string): number {
  if (n > max) throw new RowError(`${column} ${n} is above ${max}`);
  return n;
}

/**
 * A normalised share of a machine to whole MiB, rounded up so a request is never under-counted.
 * The tolerance keeps float noise (0.1 * 10240 = 1024.0000000000002) from adding a MiB.
 */
export function shareToMiB(share: number, machineMiB: number, min: number): number {
  return Math.max(min, Math.ceil(share * machineMiB - 1e-6));
}

/** The nth id handed out for the same key gets a `#n` suffix, so resubmissions stay distinct. */
export class TaskIds {
  private readonly seen = new Map<string, number>();

  next(key: string): string {
    const n = (this.seen.get(key) ?? 0) + 1;
    this.seen.set(key, n);
    return n === 1 ? key : `${key}#${n}`;
  }
}
