import { open as openFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BorealisError } from '../../../src/api/errors.js';
import { bytes, collect, journalFixture, segmentFiles, text } from './helpers.js';

const fx = journalFixture();

afterEach(() => {
  vi.restoreAllMocks();
});

describe('Journal appends', () => {
  it('round-trips payloads through close and reopen', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir);
    expect(j.recovered).toMatchObject({ truncatedBytes: 0, reason: null, records: 0, lastSeq: 0 });
    const payloads = [bytes('alpha'), new Uint8Array(0), Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff)];
    const seqs = [];
    for (const p of payloads) seqs.push(await j.append(p));
    expect(seqs).toEqual([1, 2, 3]);
    await j.close();

    const again = await fx.open(dir);
    expect(again.recovered).toMatchObject({ truncatedBytes: 0, records: 3, lastSeq: 3, snapshotSeq: 0 });
    expect(again.snapshot).toBeNull();
    const got = await collect(again.replay());
    expect(got.map((r) => r.seq)).toEqual([1, 2, 3]);
    got.forEach((r, i) => expect([...r.payload]).toEqual([...payloads[i]]));
    expect(await again.append(bytes('next'))).toBe(4);
  });

  it('copies the payload at append, so later mutation does not reach the disk', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir);
    const p = bytes('before');
    const done = j.append(p);
    p.set(bytes('AFTER!'));
    await done;
    await j.close();
    const [r] = await collect((await fx.open(dir)).replay());
    expect(text(r.payload)).toBe('before');
  });

  it('stores and replays JSON values', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir);
    const values = [{ kind: 'job', id: 'web', instances: 3 }, [1, 'two', null], 'caf\u00e9', 42];
    for (const v of values) await j.appendJson(v);
    await expect(j.appendJson(undefined)).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    await j.close();
    const out = [];
    for await (const r of (await fx.open(dir)).replayJson()) out.push(r);
    expect(out).toEqual(values.map((value, i) => ({ seq: i + 1, value })));
  });

  it('gives strictly increasing seqs in call order, also across concurrent appends', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: false, maxBatchBytes: 512 });
    const seqs = await Promise.all(Array.from({ length: 300 }, (_, i) => j.appendJson({ i })));
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(j.lastSeq).toBe(300);
    await j.close();
    const got = [];
    for await (const r of (await fx.open(dir)).replayJson<{ i: number }>()) got.push(r);
    expect(got.every((r) => r.value.i === r.seq - 1)).toBe(true);
  });

  it('group-commits 1000 concurrent appends into far fewer fsyncs (fsync on)', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: true });
    const payload = bytes(JSON.stringify({ task: 'x'.repeat(150) }));
    const seqs = await Promise.all(Array.from({ length: 1000 }, () => j.append(payload)));
    expect(new Set(seqs).size).toBe(1000);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs[0]).toBe(1);
    expect(seqs[999]).toBe(1000);
    const s = j.stats;
    expect(s.appended).toBe(1000);
    expect(s.fsyncs).toBe(s.batches);
    expect(s.fsyncs).toBeGreaterThanOrEqual(1);
    expect(s.fsyncs).toBeLessThan(50);
    expect(s.durableSeq).toBe(1000);
    expect(s.bytes).toBe(1000 * (20 + payload.length));
  });

  it('batches appends that arrive while an fsync is in flight into the next single write', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: true });
    const first = j.append(bytes('first'));
    await new Promise((r) => setImmediate(r)); // the first batch is now being written and synced
    const rest = Array.from({ length: 100 }, (_, i) => j.append(bytes(`r${i}`)));
    await Promise.all([first, ...rest]);
    expect(j.stats).toMatchObject({ batches: 2, fsyncs: 2, appended: 101 });
  });

  it('splits batches at maxBatchBytes', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: false, maxBatchBytes: 1000 });
    await Promise.all(Array.from({ length: 100 }, () => j.append(new Uint8Array(80)))); // 100-byte frames
    expect(j.stats.batches).toBe(10);
  });

  it('close() flushes pending appends; later appends and compactions reject with BRL_ERR_CLOSED', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: true });
    const inFlight = Array.from({ length: 50 }, (_, i) => j.appendJson({ i }));
    const closed = j.close();
    await expect(j.append(bytes('late'))).rejects.toMatchObject({ code: 'BRL_ERR_CLOSED' });
    await closed;
    expect(await Promise.all(inFlight)).toHaveLength(50);
    await j.close(); // idempotent
    const err = await j.appendJson({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BorealisError);
    expect(err).toMatchObject({ code: 'BRL_ERR_CLOSED' });
    await expect(j.compact(bytes('s'), 1)).rejects.toMatchObject({ code: 'BRL_ERR_CLOSED' });
    expect((await fx.open(dir)).recovered.records).toBe(50);
  });

  it('rejects bad arguments with BRL_ERR_INVALID_ARGUMENT', async () => {
    const dir = await fx.tempDir();
    await expect(fx.open(dir, { segmentBytes: 0 })).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    const j = await fx.open(dir);
    await expect(j.append('text' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    await expect(j.compact(bytes('s'), 1)).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' }); // nothing appended yet
    expect(j.lastSeq).toBe(0); // refused appends consume no seq
  });

  it('rejects every append of a batch whose fsync fails, and every later one (never reports non-durable data)', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: true });
    expect(await j.append(bytes('ok'))).toBe(1);
    const probe = await openFile(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    vi.spyOn(proto, 'datasync').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const batch = Array.from({ length: 20 }, (_, i) => j.append(bytes(`b${i}`)));
    const results = await Promise.allSettled(batch);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const reason = (results[0] as PromiseRejectedResult).reason as BorealisError;
    expect(reason).toBeInstanceOf(BorealisError);
    expect(reason.code).toBe('BRL_ERR_INTERNAL');
    expect(reason.message).toMatch(/EIO/);
    expect(j.stats.durableSeq).toBe(1);
    await expect(j.append(bytes('after'))).rejects.toMatchObject({ code: 'BRL_ERR_INTERNAL' });
    await j.close();
  });

  it('rolls to a new segment when segmentBytes is exceeded, each named by its first seq', async () => {
    const dir = await fx.tempDir();
    const j = await fx.open(dir, { fsync: false, segmentBytes: 1024 });
    for (let i = 0; i < 100; i++) await j.append(new Uint8Array(80)); // 100-byte frames: 11 per segment
    const files = await segmentFiles(dir);
    expect(files.length).toBe(10);
    expect(j.stats.segments).toBe(10);
    expect(files[0]).toBe('seg-00000000000000000001.log');
    expect(files[1]).toBe('seg-00000000000000000012.log');
    for (const f of files.slice(0, -1)) expect((await stat(join(dir, f))).size).toBe(1100);
    await j.close();
    const again = await fx.open(dir, { fsync: false, segmentBytes: 1024 });
    expect((await collect(again.replay())).map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(await again.append(new Uint8Array(1))).toBe(101);
  });
});
