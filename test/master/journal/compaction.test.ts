import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSnapshot } from '../../../src/master/journal/snapshot.js';
import { bytes, collect, journalFixture, segmentFiles, text } from './helpers.js';

const fx = journalFixture();
const SMALL = { fsync: false, segmentBytes: 1024 }; // 100-byte frames: 11 records per segment

describe('Journal compaction', () => {
  it('deletes segments covered by the snapshot; reopen yields the snapshot and later records only', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, SMALL);
    for (let i = 1; i <= 100; i++) await j.append(new Uint8Array(80).fill(i));
    expect((await segmentFiles(dir)).length).toBe(10);

    await j.compact(bytes('state@60'), 60);
    // Segments start at 1, 12, 23, 34, 45, 56, 67, ...: the first five hold only records <= 60.
    const left = await segmentFiles(dir);
    expect(left[0]).toBe('seg-00000000000000000056.log');
    expect(left.length).toBe(5);
    expect(j.snapshot?.seq).toBe(60);
    expect((await readdir(dir)).filter((n) => n.startsWith('snap-'))).toEqual(['snap-00000000000000000060.snap']);
    for (let i = 101; i <= 105; i++) await j.append(new Uint8Array(80).fill(i));
    await j.close();

    const again = await fx.open(dir, SMALL);
    expect(again.snapshot && { seq: again.snapshot.seq, text: text(again.snapshot.payload) }).toEqual({ seq: 60, text: 'state@60' });
    expect(again.recovered).toMatchObject({ snapshotSeq: 60, records: 45, lastSeq: 105 });
    const seqs = (await collect(again.replay())).map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 45 }, (_, i) => 61 + i));
    expect(await again.append(bytes('x'))).toBe(106);
  });

  it('compacting everything starts a fresh segment and keeps the sequence', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: true });
    for (let i = 1; i <= 20; i++) await j.appendJson({ i });
    await j.compactJson({ upTo: 20 }, 20);
    expect(await segmentFiles(dir)).toEqual(['seg-00000000000000000021.log']);
    await j.close();

    const again = await fx.open(dir);
    expect(again.snapshotJson()).toEqual({ seq: 20, value: { upTo: 20 } });
    expect(await collect(again.replay())).toEqual([]);
    expect(await again.appendJson({ i: 21 })).toBe(21);
  });

  it('keeps appending while compacting, and refuses to go backwards', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, SMALL);
    for (let i = 1; i <= 50; i++) await j.append(new Uint8Array(80));
    const during = Array.from({ length: 50 }, () => j.append(new Uint8Array(80)));
    await j.compact(bytes('s40'), 40);
    expect(await Promise.all(during)).toEqual(Array.from({ length: 50 }, (_, i) => 51 + i));
    await expect(j.compact(bytes('old'), 30)).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    await expect(j.compact(bytes('future'), 101)).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    await j.compact(bytes('s90'), 90);
    await j.close();
    const again = await fx.open(dir, SMALL);
    expect(again.snapshot?.seq).toBe(90);
    expect((await collect(again.replay())).map((r) => r.seq)).toEqual([91, 92, 93, 94, 95, 96, 97, 98, 99, 100]);
  });

  it('removes a temp file left by a crash mid-compaction', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir);
    await j.append(bytes('a'));
    await j.close();
    await writeFile(join(dir, 'snap-00000000000000000001.snap.tmp'), 'half');
    const again = await fx.open(dir);
    expect(again.snapshot).toBeNull();
    expect((await readdir(dir)).some((n) => n.endsWith('.tmp'))).toBe(false);
  });

  it('passes over an unreadable snapshot when the log still covers it', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir);
    for (let i = 1; i <= 5; i++) await j.append(bytes(`r${i}`));
    await j.close();
    await writeSnapshot(dir, 3, bytes('state@3'), false); // as if a crash hit after the rename, before segment deletion
    const snap = join(dir, 'snap-00000000000000000003.snap');
    const buf = await readFile(snap);
    buf[buf.length - 1] ^= 0xff;
    await writeFile(snap, buf);

    const again = await fx.open(dir);
    expect(again.snapshot).toBeNull();
    expect(again.recovered.skippedSnapshots).toEqual([{ file: 'snap-00000000000000000003.snap', reason: 'bad-checksum' }]);
    expect((await collect(again.replay())).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses to open when the only snapshot is unreadable and the segments it covered are gone', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, SMALL);
    for (let i = 1; i <= 30; i++) await j.append(new Uint8Array(80));
    await j.compact(bytes('s25'), 25);
    await j.close();
    const snap = join(dir, 'snap-00000000000000000025.snap');
    const buf = await readFile(snap);
    buf[21] ^= 0xff; // inside the payload
    await writeFile(snap, buf);
    await expect(fx.open(dir, SMALL)).rejects.toMatchObject({
      code: 'BRL_ERR_JOURNAL_CORRUPT',
      message: expect.stringMatching(/seg-0+23\.log at offset 0: .*records are missing.*unreadable snapshot: snap-0+25\.snap/),
    });
  });

  it('carries sequence numbers past 2^32 through the on-disk header', async () => {
    const dir = await fx.tempDir();
    const base = 2 ** 40;
    await writeSnapshot(dir, base, bytes('far'), false);
    const j = await fx.open(dir);
    expect(await j.append(bytes('a'))).toBe(base + 1);
    expect(await j.append(bytes('b'))).toBe(base + 2);
    await j.close();
    const again = await fx.open(dir);
    expect((await collect(again.replay())).map((r) => r.seq)).toEqual([base + 1, base + 2]);
  });
});
