import { readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BorealisError } from '../../../src/api/errors.js';
import { RECORD_MAGIC, encodeFrame } from '../../../src/master/journal/record.js';
import { bytes, collect, journalFixture, segmentFiles, text } from './helpers.js';

const fx = journalFixture();
const FRAME = 20 + 80; // header + an 80-byte payload

async function writeRecords(dir: string, n: number, segmentBytes = 64 * 1024 * 1024): Promise<void> {
  const j = await fx.open(dir, { fsync: false, segmentBytes });
  for (let i = 1; i <= n; i++) await j.append(new Uint8Array(80).fill(i));
  await j.close();
}

async function flipByte(path: string, offset: number): Promise<void> {
  const buf = await readFile(path);
  buf[offset] ^= 0x5a;
  await writeFile(path, buf);
}

describe('Journal recovery', () => {
  it('cuts a torn tail, keeps the records before it and continues the sequence', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 10);
    const [seg] = await segmentFiles(dir);
    const path = join(dir, seg);
    await truncate(path, 10 * FRAME - 37); // crash in the middle of record 10's payload

    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({ truncatedBytes: FRAME - 37, reason: 'torn-payload', file: seg, offset: 9 * FRAME, records: 9, lastSeq: 9 });
    const got = await collect(j.replay());
    expect(got.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got.every((r) => r.payload.every((b) => b === r.seq))).toBe(true);
    expect((await stat(path)).size).toBe(9 * FRAME);
    expect(await j.append(bytes('after the crash'))).toBe(10);
    await j.close();

    const again = await fx.open(dir);
    expect(again.recovered).toMatchObject({ truncatedBytes: 0, reason: null, records: 10 });
    expect(text((await collect(again.replay()))[9].payload)).toBe('after the crash');
  });

  it('cuts a tail that ends inside a header', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 3);
    const [seg] = await segmentFiles(dir);
    await truncate(join(dir, seg), 2 * FRAME + 7);
    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({ truncatedBytes: 7, reason: 'torn-header', records: 2 });
  });

  it('cuts a zero-filled tail (size extended, data never written)', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 3);
    const [seg] = await segmentFiles(dir);
    await truncate(join(dir, seg), 3 * FRAME + 4096);
    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({ truncatedBytes: 4096, reason: 'bad-magic', records: 3 });
  });

  it('truncates the last segment from a record with a flipped byte', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 10);
    const [seg] = await segmentFiles(dir);
    await flipByte(join(dir, seg), 4 * FRAME + 20 + 40); // middle of record 5's payload

    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({ truncatedBytes: 6 * FRAME, reason: 'bad-checksum', offset: 4 * FRAME, records: 4 });
    expect((await collect(j.replay())).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(await j.append(bytes('x'))).toBe(5);
  });

  it('refuses corruption in an older segment with BRL_ERR_INTERNAL naming file and offset', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 40, 1024); // 11 records per segment
    const files = await segmentFiles(dir);
    expect(files.length).toBe(4);
    await flipByte(join(dir, files[1]), 3 * FRAME + 50);

    const err = await fx.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BorealisError);
    expect(err).toMatchObject({ code: 'BRL_ERR_INTERNAL' });
    expect((err as Error).message).toContain(files[1]);
    expect((err as Error).message).toContain(`offset ${3 * FRAME}`);
    expect((err as Error).message).toContain('bad-checksum');
    expect((await stat(join(dir, files[1]))).size).toBe(11 * FRAME); // nothing was cut
  });

  it('refuses a torn older segment and a missing segment', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 40, 1024);
    const files = await segmentFiles(dir);
    await truncate(join(dir, files[0]), 11 * FRAME - 1);
    await expect(fx.open(dir)).rejects.toMatchObject({ code: 'BRL_ERR_INTERNAL', message: expect.stringContaining('torn-payload') });

    const dir2 = await fx.tempDir();
    await writeRecords(dir2, 40, 1024);
    await rm(join(dir2, (await segmentFiles(dir2))[1]));
    await expect(fx.open(dir2)).rejects.toMatchObject({ code: 'BRL_ERR_INTERNAL', message: expect.stringContaining('records are missing') });
  });

  it('refuses an intact record with the wrong seq instead of truncating it', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 3);
    const [seg] = await segmentFiles(dir);
    const buf = await readFile(join(dir, seg));
    await writeFile(join(dir, seg), Buffer.concat([buf, encodeFrame(RECORD_MAGIC, 7, bytes('stray'))]));
    await expect(fx.open(dir)).rejects.toMatchObject({
      code: 'BRL_ERR_INTERNAL',
      message: expect.stringMatching(/offset 300: record has seq 7, expected 4/),
    });
  });
});
