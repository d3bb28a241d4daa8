/** The durable event log and the bus over it, on real files in a temp dir. */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { BorealisError } from '../../src/api/errors.js';
import { EventBus } from '../../src/events/bus.js';
import { decodeLoggedEvent } from '../../src/events/codec.js';
import { EventLog, type EventLogOptions } from '../../src/events/log.js';
import { READ_CHUNK_BYTES } from '../../src/events/log-cursor.js';
import { segmentName } from '../../src/events/log-format.js';
import type { ClusterEvent } from '../../src/master/types.js';
import { range } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/log-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const dirs: string[] = [];
const open: { close(): Promise<void> }[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }
  }
  for (const o of open.splice(0)) await o.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'borealis-events-'));
  dirs.push(d);
  return d;
}

async function bus(dir: string, opts: Parameters<typeof EventBus.open>[1] = {}): Promise<EventBus> {
  const b = await EventBus.open(dir, opts);
  open.push(b);
  return b;
}

async function log(dir: string, opts: EventLogOptions = {}): Promise<EventLog> {
  const l = await EventLog.open(dir, opts);
  open.push(l);
  return l;
}

function publish(b: EventBus, n: number, pad = ''): void {
  for (let i = 0; i < n; i++) b.publish({ type: 'task_placed', job: `job${i % 5}`, taskId: `t${b.lastSeq + 1}`, agentId: 'a1', state: 'staging', data: { i, pad } });
}

/** Every event the log holds after `after`, through a cursor, in chunks. */
async function readAll(l: EventLog, after = 0): Promise<ClusterEvent[] | 'gone'> {
  const c = l.cursor();
  const out: ClusterEvent[] = [];
  try {
    for (let seq = after; ; ) {
      const chunk = await c.read(seq, 1000);
      if (chunk === 'gone') return 'gone';
      if (chunk.payloads.length === 0) return out;
      expect(chunk.first).toBe(seq + 1);
      out.push(...chunk.payloads.map(decodeLoggedEvent));
      seq = out.at(-1)!.seq;
    }
  } finally {
    c.close();
  }
}

const segments = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => /^seg-\d{20}\.log$/.test(n)).sort();
const json = (e: unknown): unknown => JSON.parse(JSON.stringify(e));

describe('EventLog', () => {
  it('keeps the epoch and continues the seqs across a clean restart, rolling segments, and reads every event back', async () => {
    const dir = await tempDir();
    const a = await bus(dir, { segmentBytes: 4096 });
    expect(a.log!.recovery.newEpoch).toBe('new event log');
    publish(a, 300);
    const first = a.since(0)!;
    await a.close();
    expect((await segments(dir)).length).toBeGreaterThan(3);

    const b = await bus(dir, { segmentBytes: 4096, capacity: 8 });
    expect(b.log!.recovery).toEqual({ newEpoch: null, truncatedBytes: 0, damage: null });
    expect(b.epoch).toBe(a.epoch);
    expect(b.lastSeq).toBe(300);
    expect(b.firstSeq).toBe(1);
    publish(b, 20);
    expect(b.lastSeq).toBe(320);
    b.flush();
    // Before the restart from disk, after it from disk and the ring: the same events, 1..320 once each.
    const all = await readAll(b.log!);
    expect(all !== 'gone' && all.map((e) => e.seq)).toEqual(range(1, 320));
    expect((all as ClusterEvent[]).slice(0, 300)).toEqual(json(first));
    expect(await b.read(0, 50)).toEqual((all as ClusterEvent[]).slice(0, 50));
    expect(await b.read(312, 50)).toEqual(json(b.since(312)));
  });

  it('shows events to readers only once written: loggedSeq trails lastSeq until a flush', async () => {
    const b = await bus(await tempDir());
    publish(b, 5);
    expect(b.lastSeq).toBe(5);
    expect(b.loggedSeq).toBe(0);
    expect(await b.read(0)).toEqual([]);
    b.flush();
    expect(b.loggedSeq).toBe(5);
    expect((await b.read(0)) as ClusterEvent[]).toHaveLength(5);
    // The bus flushes by itself on the next turn.
    publish(b, 3);
    await new Promise((r) => setImmediate(r));
    expect(b.loggedSeq).toBe(8);
  });

  it('never gives a seq a reader may have seen to another event after a crash (SIGKILL), and cuts a torn tail', async () => {
    const dir = await tempDir();
    const r1 = await runAndKill(dir, 1, 3_000);
    expect(r1.readyLast).toBe(0);
    const r2 = await runAndKill(dir, 2, 3_000);
    // Same boot, same data dir: the epoch carried over and the seqs continued after everything written.
    expect(r2.epoch).toBe(r1.epoch);
    expect(r2.readyLast).toBeGreaterThanOrEqual(r1.logged);

    // A write cut short: the start of a record (header and a few payload bytes) at the end of the last segment,
    // which the kill may have left empty just after a roll: the bytes come from the first segment.
    const segs = await segments(dir);
    const last = join(dir, segs.at(-1)!);
    const whole = await readFile(last);
    await appendFile(last, (await readFile(join(dir, segs[0]!))).subarray(0, 30));
    const l = await log(dir);
    expect(l.epoch).toBe(r1.epoch);
    expect(l.recovery.newEpoch).toBeNull();
    expect(l.recovery.truncatedBytes).toBe(30);
    expect(l.recovery.damage).toMatchObject({ file: segs.at(-1), reason: 'torn-payload' });
    expect((await stat(last)).size).toBe(whole.length);
    expect(l.lastSeq).toBeGreaterThanOrEqual(r2.logged);

    const all = (await readAll(l)) as ClusterEvent[];
    expect(all.map((e) => e.seq)).toEqual(range(1, l.lastSeq));
    for (const e of all) expect(e.data?.seq).toBe(e.seq);
    // Run 1 wrote exactly the seqs up to where run 2 started; every seq run 1's readers saw is still run 1's.
    const firstOf2 = all.find((e) => e.data?.run === 2)!.seq;
    expect(firstOf2).toBe(r2.readyLast + 1);
    expect(all.filter((e) => e.seq <= r1.logged).every((e) => e.data?.run === 1)).toBe(true);
    expect(all.filter((e) => e.seq > r2.readyLast).every((e) => e.data?.run === 2)).toBe(true);
  });

  it('starts a new epoch (and an empty log after the old seqs) when the last segment is damaged mid-file', async () => {
    const dir = await tempDir();
    const a = await bus(dir);
    publish(a, 50);
    await a.close();
    const seg = join(dir, (await segments(dir))[0]!);
    const buf = await readFile(seg);
    // A payload byte of the 11th record: its checksum fails, and whole records follow it.
    let off = 0;
    for (let k = 0; k < 10; k++) off += 20 + buf.readUInt32LE(off + 8);
    buf[off + 22] ^= 0xff;
    await writeFile(seg, buf);

    const b = await bus(dir);
    expect(b.epoch).not.toBe(a.epoch);
    expect(b.log!.recovery.newEpoch).toMatch(/^damaged record in seg-0+1\.log at offset \d+ \(bad-checksum\)$/);
    expect(b.lastSeq).toBe(10);
    expect(b.firstSeq).toBe(b.lastSeq + 1);
    expect(await segments(dir)).toEqual([segmentName(b.lastSeq + 1)]);
  });

  it('starts a new epoch after a reboot without a clean close, and keeps it after a clean one', async () => {
    const dir = await tempDir();
    const a = await bus(dir);
    publish(a, 10);
    await a.close();
    // The boot id in the epoch file stands for "the boot the log was last opened in".
    const meta = JSON.parse(await readFile(join(dir, 'epoch'), 'utf8')) as { epoch: string; bootId: string };
    await writeFile(join(dir, 'epoch'), JSON.stringify({ ...meta, bootId: 'another-boot' }));
    const b = await bus(dir);
    expect(b.epoch).toBe(a.epoch); // closed cleanly: everything was synced
    b.flush();
    await writeFile(join(dir, 'epoch'), JSON.stringify({ epoch: b.epoch, bootId: 'another-boot' }));
    // Not closed (a crash) and the boot changed: what was in the page cache may be gone.
    const c = await EventLog.open(dir);
    open.push(c);
    expect(c.epoch).not.toBe(a.epoch);
    expect(c.recovery.newEpoch).toContain('without a clean close');
    expect(c.firstSeq).toBe(c.lastSeq + 1);
  });

  it('refuses a damaged sealed segment with a clear error, then stops serving it (readers resync), without a crash', async () => {
    const dir = await tempDir();
    const errors: BorealisError[] = [];
    const a = await bus(dir, { segmentBytes: 2048 });
    publish(a, 200);
    await a.close();
    const names = await segments(dir);
    expect(names.length).toBeGreaterThan(4);
    const victim = join(dir, names[2]!);
    const buf = await readFile(victim);
    buf[100] ^= 0x55;
    await writeFile(victim, buf);

    const l = await log(dir, { segmentBytes: 2048, onError: (e) => errors.push(e) });
    expect(l.recovery.newEpoch).toBeNull(); // only the last segment is read at open
    await expect(readAll(l)).rejects.toMatchObject({
      code: 'BRL_ERR_INTERNAL',
      message: expect.stringMatching(new RegExp(`^event log corrupt: ${names[2]} at offset \\d+: (bad-checksum|bad-magic)$`)),
    });
    expect(errors).toHaveLength(1);
    expect(l.firstSeq).toBe(Number(names[3]!.slice(4, 24)));
    expect(await readAll(l)).toBe('gone');
    const after = (await readAll(l, l.firstSeq - 1)) as ClusterEvent[];
    expect(after.map((e) => e.seq)).toEqual(range(l.firstSeq, 200));
    const files = await readdir(dir);
    expect(files).toContain(`${names[2]}.corrupt`);
    expect(files).not.toContain(names[0]);
  });

  it('bounds the disk by bytes and by count; older seqs are gone', async () => {
    const dirB = await tempDir();
    const byBytes = await bus(dirB, { segmentBytes: 4096, retainBytes: 16 * 1024, capacity: 16 });
    for (let r = 0; r < 20; r++) {
      publish(byBytes, 50, 'x'.repeat(40));
      byBytes.flush();
    }
    // Retention deletes old segments in the background: measure until it has caught up (a segment can go between
    // the listing and its stat).
    const bound = 16 * 1024 + 4096 + 64 * 50;
    let total = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 250 && total > bound; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      total = 0;
      for (const n of await segments(dirB)) total += (await stat(join(dirB, n)).catch(() => ({ size: 0 }))).size;
    }
    expect(total).toBeLessThanOrEqual(bound);
    expect(byBytes.firstSeq).toBeGreaterThan(1);
    expect(await byBytes.read(0)).toBe('gone');
    expect(((await byBytes.read(byBytes.firstSeq - 1)) as ClusterEvent[])[0]!.seq).toBe(byBytes.firstSeq);

    const dirC = await tempDir();
    const byCount = await bus(dirC, { segmentBytes: 1024, retainEvents: 100, capacity: 16 });
    for (let r = 0; r < 50; r++) {
      publish(byCount, 10);
      byCount.flush();
    }
    // Whole segments go once all their events are older than the newest 100: ~100 plus one segment's worth stay.
    expect(byCount.lastSeq - byCount.firstSeq + 1).toBeGreaterThanOrEqual(100);
    expect(byCount.lastSeq - byCount.firstSeq + 1).toBeLessThan(100 + 20);
  });

  it('replays a long log in bounded chunks through one cursor', async () => {
    const b = await bus(await tempDir(), { capacity: 16 });
    publish(b, 20_000);
    b.flush();
    const c = b.cursor()!;
    let seq = 0;
    let reads = 0;
    let payload = 0;
    for (;;) {
      const chunk = await c.read(seq, 5_000, 64 * 1024);
      if (chunk === 'gone' || chunk.payloads.length === 0) break;
      reads++;
      expect(chunk.first).toBe(seq + 1);
      // At most one chunk's read, and at most what was asked for (plus one record past the byte bound).
      expect(chunk.payloads.length).toBeLessThanOrEqual(5_000);
      expect(chunk.bytes).toBeLessThan(Math.min(READ_CHUNK_BYTES, 64 * 1024 + 200));
      seq += chunk.payloads.length;
      payload += chunk.bytes;
    }
    c.close();
    expect(seq).toBe(20_000);
    expect(reads).toBeGreaterThanOrEqual(Math.floor(payload / (64 * 1024 + 200)));
  });

  it('goes on memory-only under a new epoch when the log cannot be written, and the log keeps what it had', async () => {
    const dir = await tempDir();
    const errors: BorealisError[] = [];
    const b = await bus(dir, { segmentBytes: 1, onLogError: (e) => errors.push(e) });
    const epoch = b.epoch;
    publish(b, 5);
    b.flush();
    // Something already sits where the next segment goes (one record per segment here): the next roll fails.
    await mkdir(join(dir, segmentName(6)));
    publish(b, 30);
    b.flush();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/^event log roll to a new segment after seq 5 failed: EEXIST/);
    expect(b.durable).toBe(false);
    expect(b.epoch).not.toBe(epoch);
    publish(b, 5);
    expect(b.loggedSeq).toBe(40);
    expect(((await b.read(30)) as ClusterEvent[]).map((e) => e.seq)).toEqual(range(31, 40));
    await b.close();

    await rm(join(dir, segmentName(6)), { recursive: true });
    const again = await log(dir);
    // Written before the failure: 1..5, in the old epoch (the log was never cleanly closed, same boot).
    expect(again.epoch).toBe(epoch);
    expect(again.lastSeq).toBe(5);
  });

  it('checks its options', async () => {
    const dir = await tempDir();
    for (const bad of [{ segmentBytes: 0 }, { retainBytes: -1 }, { retainEvents: 1.5 }, { segmentBytes: Number.NaN }]) {
      await expect(EventLog.open(dir, bad)).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    }
  });
});

interface Run {
  epoch: string;
  readyLast: number;
  /** Highest seq the child reported written (what a stream reader could have seen). */
  logged: number;
}

/** Runs the publishing child on `dir` until it has written `minLogged` more events, then SIGKILLs it. */
function runAndKill(dir: string, run: number, minLogged: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(run)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    const r: Run = { epoch: '', readyLast: -1, logged: 0 };
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'ready') {
          r.epoch = a!;
          r.readyLast = Number(b);
        } else if (kind === 'logged') {
          r.logged = Number(a);
        }
      }
      if (r.readyLast >= 0 && r.logged >= r.readyLast + minLogged && child.signalCode === null) child.kill('SIGKILL');
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(r) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}
