import { readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BorealisError, JournalCorruptError } from '../../../src/api/errors.js';
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

async function tornCopies(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.torn-')).sort();
}

/** Opens `dir` expecting BRL_ERR_JOURNAL_CORRUPT at `offset` of `file`, and checks that no file changed. */
async function expectRefused(dir: string, file: string, offset: number): Promise<JournalCorruptError> {
  const before = new Map<string, Buffer>();
  for (const name of await readdir(dir)) before.set(name, await readFile(join(dir, name)));
  const err = await fx.open(dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(JournalCorruptError);
  const e = err as JournalCorruptError;
  expect(e).toMatchObject({ code: 'BRL_ERR_JOURNAL_CORRUPT', httpStatus: 500, file: join(dir, file), offset });
  expect(e.message).toContain(`${file} at offset ${offset}`);
  expect(e.message).toContain('not modified');
  expect((await readdir(dir)).sort()).toEqual([...before.keys()].sort()); // no .torn-* copy, no new segment
  for (const [name, buf] of before) expect((await readFile(join(dir, name))).equals(buf)).toBe(true);
  return e;
}

describe('Journal recovery', () => {
  it('cuts a torn tail, keeps the records before it and continues the sequence', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 10);
    const [seg] = await segmentFiles(dir);
    const path = join(dir, seg);
    await truncate(path, 10 * FRAME - 37); // crash in the middle of record 10's payload

    const torn = (await readFile(path)).subarray(9 * FRAME);
    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({
      truncatedBytes: FRAME - 37,
      reason: 'torn-payload',
      file: seg,
      offset: 9 * FRAME,
      tornCopy: `${seg}.torn-${9 * FRAME}`,
      records: 9,
      lastSeq: 9,
    });
    // The cut bytes are kept beside the segment, not destroyed.
    expect(await tornCopies(dir)).toEqual([`${seg}.torn-${9 * FRAME}`]);
    expect((await readFile(join(dir, `${seg}.torn-${9 * FRAME}`))).equals(torn)).toBe(true);
    const got = await collect(j.replay());
    expect(got.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(got.every((r) => r.payload.every((b) => b === r.seq))).toBe(true);
    expect((await stat(path)).size).toBe(9 * FRAME);
    expect(await j.append(bytes('after the crash'))).toBe(10);
    await j.close();

    const again = await fx.open(dir);
    expect(again.recovered).toMatchObject({ truncatedBytes: 0, reason: null, tornCopy: null, records: 10 });
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

  it('refuses a flipped byte in the middle of the last segment, with intact records after it, and changes nothing', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 10);
    const [seg] = await segmentFiles(dir);
    await flipByte(join(dir, seg), 4 * FRAME + 20 + 40); // middle of record 5's payload

    const err = await expectRefused(dir, seg, 4 * FRAME);
    expect(err.message).toContain('bad-checksum at seq 5');
    expect(err.message).toContain(`intact record (seq 6) follows at offset ${5 * FRAME}`);
    expect(err.message).toContain(`truncate -s ${4 * FRAME}`);
    await expectRefused(dir, seg, 4 * FRAME); // and again: refusing is not a one-time event
  });

  it('refuses the QA repro: one byte overwritten mid-segment in a journal of JSON records', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir);
    for (let i = 0; i < 300; i++) await j.appendJson({ kind: 'task', id: `web-${i}`, state: 'RUNNING' });
    await j.close();
    const [seg] = await segmentFiles(dir);
    const buf = await readFile(join(dir, seg));
    expect(buf.length).toBeGreaterThan(20_100);
    buf.write('X', 20_000); // printf X | dd bs=1 seek=20000 conv=notrunc
    await writeFile(join(dir, seg), buf);

    const err = await fx.open(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BRL_ERR_JOURNAL_CORRUPT' });
    const { offset } = err as JournalCorruptError;
    expect(offset).toBeLessThanOrEqual(20_000);
    expect(offset).toBeGreaterThan(20_000 - 200);
    await expectRefused(dir, seg, offset);
  });

  it('refuses a damaged length that reads as a torn payload when intact records follow', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 10);
    const [seg] = await segmentFiles(dir);
    await flipByte(join(dir, seg), 2 * FRAME + 9); // record 3's length grows past the end of the file
    const err = await expectRefused(dir, seg, 2 * FRAME);
    expect(err.message).toContain('torn-payload at seq 3');
  });

  it('refuses a zeroed block in the middle of the last segment', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 100);
    const [seg] = await segmentFiles(dir);
    const buf = await readFile(join(dir, seg));
    buf.fill(0, 4096, 8192); // a lost page: records 41..82 are damaged, 83..100 are intact
    await writeFile(join(dir, seg), buf);
    const err = await expectRefused(dir, seg, 40 * FRAME);
    expect(err.message).toMatch(/intact record \(seq 83\)/);
  });

  it('cuts a garbled last record (nothing intact after it) as a torn tail and keeps a copy', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 10);
    const [seg] = await segmentFiles(dir);
    await flipByte(join(dir, seg), 9 * FRAME + 20 + 40); // middle of record 10, the last one
    const tail = (await readFile(join(dir, seg))).subarray(9 * FRAME);

    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({ truncatedBytes: FRAME, reason: 'bad-checksum', offset: 9 * FRAME, records: 9 });
    expect((await readFile(join(dir, j.recovered.tornCopy!))).equals(tail)).toBe(true);
    expect(await j.append(bytes('x'))).toBe(10);
  });

  it('does not take a frame inside a torn payload for an intact record', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 3);
    const [seg] = await segmentFiles(dir);
    const path = join(dir, seg);
    // A 4th record whose payload embeds a whole, checksummed frame, torn after that frame: the
    // embedded frame's seq (40) cannot follow seq 3 that close, so it is payload, not a record.
    const inner = encodeFrame(RECORD_MAGIC, 40, bytes('inner'));
    const outer = encodeFrame(RECORD_MAGIC, 4, Buffer.concat([inner, Buffer.alloc(200)]));
    await writeFile(path, Buffer.concat([await readFile(path), outer.subarray(0, 20 + inner.length + 10)]));
    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({ reason: 'torn-payload', offset: 3 * FRAME, truncatedBytes: 20 + inner.length + 10, lastSeq: 3 });
  });

  it('reuses an identical torn copy left by a crash between copy and cut, and never overwrites a different one', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 5);
    const [seg] = await segmentFiles(dir);
    const path = join(dir, seg);
    await truncate(path, 5 * FRAME - 10);
    const tail = (await readFile(path)).subarray(4 * FRAME);
    await writeFile(`${path}.torn-${4 * FRAME}`, tail);
    expect((await fx.open(dir)).recovered.tornCopy).toBe(`${seg}.torn-${4 * FRAME}`);
    expect(await tornCopies(dir)).toEqual([`${seg}.torn-${4 * FRAME}`]);

    const dir2 = await fx.tempDir();
    await writeRecords(dir2, 5);
    const path2 = join(dir2, seg);
    await truncate(path2, 5 * FRAME - 10);
    await writeFile(`${path2}.torn-${4 * FRAME}`, 'an earlier, different tail');
    expect((await fx.open(dir2)).recovered.tornCopy).toBe(`${seg}.torn-${4 * FRAME}.1`);
    expect(await readFile(`${path2}.torn-${4 * FRAME}`, 'utf8')).toBe('an earlier, different tail');
  });

  it('refuses corruption in an older segment with BRL_ERR_JOURNAL_CORRUPT naming file and offset', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 40, 1024); // 11 records per segment
    const files = await segmentFiles(dir);
    expect(files.length).toBe(4);
    await flipByte(join(dir, files[1]), 3 * FRAME + 50);

    const err = await expectRefused(dir, files[1], 3 * FRAME);
    expect(err).toBeInstanceOf(BorealisError);
    expect(err.message).toContain('bad-checksum');
    expect(err.message).toContain('sealed segment');
    expect(err.message).toContain(`move the 2 later segment(s) (${files[2]} on)`);
    expect((await stat(join(dir, files[1]))).size).toBe(11 * FRAME); // nothing was cut
  });

  it('refuses a flipped byte in the last record of an older segment (intact records follow only in later files)', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 40, 1024);
    const files = await segmentFiles(dir);
    await flipByte(join(dir, files[0]), 10 * FRAME + 30);
    await expectRefused(dir, files[0], 10 * FRAME);
  });

  it('refuses a torn older segment and a missing segment', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 40, 1024);
    const files = await segmentFiles(dir);
    await truncate(join(dir, files[0]), 11 * FRAME - 1);
    await expect(fx.open(dir)).rejects.toMatchObject({ code: 'BRL_ERR_JOURNAL_CORRUPT', message: expect.stringContaining('torn-payload') });

    const dir2 = await fx.tempDir();
    await writeRecords(dir2, 40, 1024);
    await rm(join(dir2, (await segmentFiles(dir2))[1]));
    await expect(fx.open(dir2)).rejects.toMatchObject({ code: 'BRL_ERR_JOURNAL_CORRUPT', message: expect.stringContaining('records are missing') });
  });

  it('refuses an intact record with the wrong seq instead of truncating it', async () => {
    const dir = await fx.tempDir();
    await writeRecords(dir, 3);
    const [seg] = await segmentFiles(dir);
    const buf = await readFile(join(dir, seg));
    await writeFile(join(dir, seg), Buffer.concat([buf, encodeFrame(RECORD_MAGIC, 7, bytes('stray'))]));
    await expect(fx.open(dir)).rejects.toMatchObject({
      code: 'BRL_ERR_JOURNAL_CORRUPT',
      message: expect.stringMatching(/offset 300: record has seq 7, expected 4/),
    });
  });
});
