import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Journal } from '../../../src/master/journal/index.js';
import type { JournalOptions, JournalRecord } from '../../../src/master/journal/index.js';

/**
 * Per-test temp dirs and journals, closed and removed in afterEach even when a test fails.
 * Call once at the top of a test file.
 */
export function journalFixture(): {
  tempDir: () => Promise<string>;
  open: (dir: string, opts?: JournalOptions) => Promise<Journal>;
} {
  const dirs: string[] = [];
  const journals: Journal[] = [];
  afterEach(async () => {
    for (const j of journals.splice(0)) await j.close().catch(() => undefined);
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  return {
    tempDir: async () => {
      const d = await mkdtemp(join(tmpdir(), 'borealis-journal-'));
      dirs.push(d);
      return d;
    },
    open: async (dir, opts = { fsync: false }) => {
      const j = await Journal.open(dir, opts);
      journals.push(j);
      return j;
    },
  };
}

export async function collect(iter: AsyncIterable<JournalRecord>): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const r of iter) out.push(r);
  return out;
}

export async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort();
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
