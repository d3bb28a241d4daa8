import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirLock as DataDirLock, LOCK_FILE, isLiveHolder } from '../../src/util/dir-lock.js';
import type { ProcStat } from '../../src/agent/isolation/proc.js';
import { masterFixture } from './helpers.js';

const fx = masterFixture();
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A live process that is not this one (stands for another master holding the directory). */
async function otherProcess(): Promise<ChildProcess> {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(c);
  await new Promise((r) => c.once('spawn', r));
  return c;
}

function startTime(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
}

const lockOf = async (dir: string): Promise<{ pid: number; start: number | null; token: string }> => JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'));

describe('one master per data directory', () => {
  it('refuses a second master on a directory in use, naming the holder, and lets one in after close', async () => {
    const dataDir = await fx.tempDir();
    const m1 = await fx.open({ dataDir });
    expect((await lockOf(dataDir)).pid).toBe(process.pid);
    const err = await fx.open({ dataDir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BRL_ERR_DATA_DIR_LOCKED', holderPid: process.pid });
    expect((err as Error).message).toContain(`pid ${process.pid}`);
    // The refused open changed nothing: the first master still holds the lock and works.
    expect((await lockOf(dataDir)).pid).toBe(process.pid);
    await m1.submitJob({ name: 'still-fine', type: 'service', instances: 1, command: 'true', resources: { cpus: 0.1, mem: 16 } });
    await m1.close();
    await expect(readdir(dataDir)).resolves.not.toContain(LOCK_FILE);
    const m2 = await fx.open({ dataDir });
    expect(m2.listJobs().map((j) => j.name)).toEqual(['still-fine']);
    await m2.close();
  });

  it('is refused while another live process holds the lock', async () => {
    const dir = await fx.tempDir();
    const other = await otherProcess();
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, start: startTime(other.pid!), token: 'theirs' }));
    await expect(DataDirLock.acquire(dir)).rejects.toMatchObject({ code: 'BRL_ERR_DATA_DIR_LOCKED', holderPid: other.pid });
    expect((await lockOf(dir)).token).toBe('theirs');
  });

  it('takes over a lock whose process is gone, whose pid was recycled, or that is unreadable', async () => {
    const dir = await fx.tempDir();
    // Gone: a process that has exited.
    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => dead.once('exit', r));
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: dead.pid, start: 1, token: 'crashed' }));
    const a = await DataDirLock.acquire(dir);
    expect(await lockOf(dir)).toMatchObject({ pid: process.pid, start: startTime(process.pid) });
    await a.release();

    // Recycled: the pid is alive but started at another time than the one recorded, so it is not the holder.
    const other = await otherProcess();
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, start: startTime(other.pid!) - 1, token: 'old' }));
    const b = await DataDirLock.acquire(dir);
    expect((await lockOf(dir)).pid).toBe(process.pid);
    await b.release();

    // Unreadable: not a lock this code writes (it links in only complete files).
    await writeFile(join(dir, LOCK_FILE), '');
    const c = await DataDirLock.acquire(dir);
    expect((await lockOf(dir)).pid).toBe(process.pid);
    await c.release();
    // Nothing but the data is left behind.
    expect(await readdir(dir)).toEqual([]);
  });

  it('release removes only its own lock and can be called twice', async () => {
    const dir = await fx.tempDir();
    const lock = await DataDirLock.acquire(dir);
    // Someone replaced the file (an operator, or a takeover race): releasing must not delete theirs.
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, start: null, token: 'someone-else' }));
    await lock.release();
    await lock.release();
    expect((await lockOf(dir)).token).toBe('someone-else');
  });
});

describe('who counts as the holder', () => {
  const stat = (state: string, startTicks: number): ProcStat => ({ pid: process.pid, state, ppid: 1, pgrp: process.pid, cpuSeconds: 0, childCpuSeconds: 0, rssPages: 0, startTicks });
  // This process stands for the holder: it answers kill(pid, 0); what /proc says of it is what varies.
  const holder = { pid: process.pid, start: 42 };

  it('a zombie (killed, not yet reaped) is not a holder', async () => {
    expect(await isLiveHolder(holder, async () => stat('S', 42))).toBe(true);
    expect(await isLiveHolder(holder, async () => stat('Z', 42))).toBe(false);
    expect(await isLiveHolder(holder, async () => stat('X', 42))).toBe(false);
    // Also when the lock recorded no start time (written where /proc was missing).
    expect(await isLiveHolder({ pid: process.pid, start: null }, async () => stat('Z', 42))).toBe(false);
  });

  it('a recycled pid is not a holder; without /proc a live pid is', async () => {
    expect(await isLiveHolder(holder, async () => stat('R', 43))).toBe(false);
    expect(await isLiveHolder(holder, async () => undefined)).toBe(true);
  });

  it('a zombie holder is taken over', async () => {
    const dir = await fx.tempDir();
    // A real unreaped child: `sh` backgrounds a child and then execs a sleeper, which never waits for it. The child
    // outlives the exec by a second, so it is the sleeper, not the shell (which would reap it), that it dies under.
    const parent = spawn('sh', ['-c', 'sh -c "sleep 1; exit 0" & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(parent);
    const zombiePid = Number((await new Promise<Buffer>((r) => parent.stdout!.once('data', r))).toString().trim());
    let state = '';
    for (let i = 0; i < 1000 && state !== 'Z'; i++) {
      const text = await readFile(`/proc/${zombiePid}/stat`, 'utf8');
      state = text.slice(text.lastIndexOf(')') + 2).split(' ')[0]!;
      if (state !== 'Z') await new Promise((r) => setTimeout(r, 10));
    }
    expect(state).toBe('Z');
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: zombiePid, start: startTime(zombiePid), token: 'killed' }));
    const lock = await DataDirLock.acquire(dir);
    expect((await lockOf(dir)).pid).toBe(process.pid);
    await lock.release();
  });
});
