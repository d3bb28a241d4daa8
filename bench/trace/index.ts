/**
 * Trace readers for the benchmark's trace replay. Files are streamed line by line (the public
 * traces run to many GB; `.gz` parts are inflated on the fly) and every bad row is reported with
 * its line number rather than dropped, so a replay can say exactly what it did not submit.
 */

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InvalidArgumentError } from '../../src/api/errors.js';
import { alibabaParser } from './alibaba.js';
import { googleParser } from './google.js';
import { RowError, type RowParser } from './row.js';
import {
  TRACE_FORMATS,
  type BadRow,
  type TraceEvent,
  type TraceFormat,
  type TraceReadOptions,
  type TraceReadResult,
  type TraceStreamStats,
  type TraceSubmission,
} from './types.js';

export * from './types.js';
export { generateAlibabaTrace, generateGoogleTrace } from './generate.js';

const PARSERS: Record<TraceFormat, (opts: TraceReadOptions) => RowParser> = {
  'alibaba-v2018': alibabaParser,
  'google-2011': googleParser,
};

function checkOptions(opts: TraceReadOptions): void {
  for (const key of ['machineCpus', 'machineMemMiB', 'machineDiskMiB'] as const) {
    const v = opts[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
      throw new InvalidArgumentError(`${key} must be a positive number`, [{ path: key, message: 'must be > 0' }]);
    }
  }
  const { limit } = opts;
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
    throw new InvalidArgumentError('limit must be a non-negative integer', [{ path: 'limit', message: 'must be >= 0' }]);
  }
}

async function checkFile(file: string): Promise<void> {
  const refuse = (why: string): InvalidArgumentError =>
    new InvalidArgumentError(`trace file ${JSON.stringify(file)} ${why}`, [{ path: 'file', message: why }]);
  try {
    if (!(await stat(file)).isFile()) throw refuse('is not a regular file');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw refuse('does not exist');
    throw err;
  }
}

function openLines(file: string): { lines: AsyncIterable<string>; close(): void } {
  const raw = createReadStream(file);
  let input: Readable = raw;
  if (file.endsWith('.gz')) {
    // pipeline, not pipe: a read error must reach the gunzip stream and so the line reader.
    input = pipeline(raw, createGunzip(), () => {});
  }
  const rl = createInterface({ input, crlfDelay: Infinity });
  return {
    lines: rl,
    close() {
      rl.close();
      input.destroy();
      raw.destroy();
    },
  };
}

/**
 * Yields the trace's submissions and bad rows in file order; returns the line counts when done.
 * Breaking out early closes the file.
 */
export async function* streamTrace(
  file: string,
  format: TraceFormat,
  opts: TraceReadOptions = {},
): AsyncGenerator<TraceEvent, TraceStreamStats, undefined> {
  if (!Object.hasOwn(PARSERS, format)) {
    throw new InvalidArgumentError(`unknown trace format ${JSON.stringify(format)} (use ${TRACE_FORMATS.join(' or ')})`, [
      { path: 'format', message: `must be one of ${TRACE_FORMATS.join(', ')}` },
    ]);
  }
  checkOptions(opts);
  await checkFile(file);
  const parse = PARSERS[format](opts);
  const limit = opts.limit ?? Infinity;
  const stats: TraceStreamStats = { rows: 0, skipped: 0 };
  if (limit === 0) return stats;

  const source = openLines(file);
  let emitted = 0;
  try {
    for await (const raw of source.lines) {
      const line = ++stats.rows;
      const text = line === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
      if (text.trim() === '') {
        stats.skipped++;
        continue;
      }
      let parsed: ReturnType<RowParser>;
      try {
        parsed = parse(text, line);
      } catch (err) {
        if (!(err instanceof RowError)) throw err;
        yield { kind: 'bad', value: { line, reason: err.message } };
        continue;
      }
      if (parsed === 'skip') {
        stats.skipped++;
        continue;
      }
      for (const value of parsed) {
        yield { kind: 'submission', value };
        if (++emitted >= limit) return stats;
      }
    }
  } finally {
    source.close();
  }
  return stats;
}

/** Reads a whole trace into memory, submissions sorted by time (ties in file order). */
export async function readTrace(
  file: string,
  format: TraceFormat,
  opts: TraceReadOptions = {},
): Promise<TraceReadResult> {
  const submissions: TraceSubmission[] = [];
  const badRows: BadRow[] = [];
  const events = streamTrace(file, format, opts);
  for (;;) {
    const next = await events.next();
    if (next.done) {
      // Array.prototype.sort is stable, and events arrive in file order.
      submissions.sort((a, b) => a.time - b.time);
      return { submissions, badRows, rows: next.value.rows, skipped: next.value.skipped, format };
    }
    if (next.value.kind === 'submission') submissions.push(next.value.value);
    else badRows.push(next.value.value);
  }
}
