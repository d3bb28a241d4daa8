import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { liveIdentity, readProcStat } from '../agent/isolation/proc.js';
import type { ProcStat } from '../agent/isolation/proc.js';
import { DirLockedError } from '../api/errors.js';

/**
 * One process per directory: a master's data directory (two masters both append to the journal and the event log,
 * and the next start finds both damaged), an agent's work directory (two agents register one agent id, and the
 * master flips between their connections, losing tasks). So the owner holds `<dir>/LOCK`, created exclusively, for
 * as long as it is open; a second one is refused, naming the holder.
 *
 * A process that crashed leaves its LOCK behind: a lock whose process is gone is stale and taken over. A pid alone
 * would not tell a recycled pid from the holder, so the file also records the holder's start time (/proc, field 22,
 * in clock ticks since boot) and a lock counts as held only while a process with that pid and that start time
 * lives. A zombie (killed, not yet reaped by its parent) is gone: it answers kill(pid, 0) but will never run again.
 * Where /proc is missing, a live pid counts as the holder (errs on the side of refusing).
 *
 * Two processes taking over the same stale lock at the same instant could both win (the takeover is a rename, then
 * a link, and the other's rename can land between them); a crashed owner restarted twice at once on one
 * directory is the only way to get there.
 */
export const LOCK_FILE = 'LOCK';

/** Who locks the directory: picks the error a refused second owner gets (it names the flag to change). */
export type DirOwner = 'master' | 'agent';

interface LockContent {
  pid: number;
  /** Start time of `pid` in clock ticks since boot, or null where /proc is not there. */
  start: number | null;
  /** Tells this holder's file from a later one with the same pid (close() removes only its own). */
  token: string;
}

export class DirLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly token: string,
  ) {}

  /**
   * Takes the directory's lock (the directory must exist), or throws DirLockedError naming the holder (its code
   * BRL_ERR_DATA_DIR_LOCKED for a master, the default, BRL_ERR_WORK_DIR_LOCKED for an agent).
   */
  static async acquire(dir: string, owner: DirOwner = 'master'): Promise<DirLock> {
    const file = join(dir, LOCK_FILE);
    const mine: LockContent = { pid: process.pid, start: await startTimeOf(process.pid), token: randomBytes(8).toString('hex') };
    // The content goes to a file of our own first and is then linked in as LOCK (link fails if LOCK exists): a
    // LOCK is complete from the moment it exists, so nobody reads a half-written one and takes it for stale.
    const temp = `${file}.${process.pid}-${mine.token}`;
    const fh = await open(temp, 'wx', 0o644);
    try {
      await fh.writeFile(`${JSON.stringify(mine)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      // Twice at most: the second attempt follows the removal of a stale lock.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          await link(temp, file);
          return new DirLock(file, mine.token);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = await readLock(file);
        if (holder !== null && (await isLiveHolder(holder))) throw new DirLockedError(owner, dir, holder.pid);
        // Stale (its process is gone) or unreadable (not one of ours): move it aside, retry.
        const aside = `${file}.stale-${process.pid}-${mine.token}`;
        await rename(file, aside).catch(ignoreMissing);
        await unlink(aside).catch(ignoreMissing);
      }
    } finally {
      await unlink(temp).catch(ignoreMissing);
    }
    const holder = await readLock(file);
    throw new DirLockedError(owner, dir, holder?.pid ?? null);
  }

  /** Gives the lock up. Removes the file only while it is still this holder's. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const now = await readLock(this.file);
    if (now !== null && now.token === this.token) await unlink(this.file).catch(ignoreMissing);
  }
}

async function readLock(file: string): Promise<LockContent | null> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as Partial<LockContent>;
    if (!Number.isInteger(v.pid) || (v.pid as number) <= 0 || typeof v.token !== 'string') return null;
    return { pid: v.pid as number, start: typeof v.start === 'number' ? v.start : null, token: v.token };
  } catch {
    return null;
  }
}

/**
 * Whether the process a lock names still holds it: it exists, is not a zombie, and (when the lock recorded one) has
 * the recorded start time. `readStat` is /proc by default; tests pass their own.
 */
export async function isLiveHolder(
  holder: { pid: number; start: number | null },
  readStat: (pid: number) => Promise<ProcStat | undefined> = readProcStat,
): Promise<boolean> {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user, which is still a holder.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = await readStat(holder.pid);
  if (stat === undefined) return true; // no /proc (or it exited this instant): the live pid decides
  // Z: exited, waiting for its parent to reap it (a master restarted right after kill -9 sees this); X: being reaped.
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return holder.start === null || !Number.isFinite(stat.startTicks) || stat.startTicks === holder.start;
}

async function startTimeOf(pid: number): Promise<number | null> {
  return (await liveIdentity(pid))?.startTicks ?? null;
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
