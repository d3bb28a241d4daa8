import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readProcStat } from '../agent/isolation/proc.js';
import { DataDirLockedError } from '../api/errors.js';

/**
 * One master per data directory. Two masters on one directory both append to the journal and the event log, and
 * the next start finds both damaged (the event history is cut at a new epoch). So a master holds `<dataDir>/LOCK`,
 * created exclusively, for as long as it is open; a second one is refused, naming the holder.
 *
 * A master that crashed leaves its LOCK behind: a lock whose process is gone is stale and taken over. A pid alone
 * would not tell a recycled pid from the holder, so the file also records the holder's start time (/proc, field 22,
 * in clock ticks since boot) and a lock counts as held only while a process with that pid and that start time
 * lives. Where /proc is missing, a live pid counts as the holder (errs on the side of refusing).
 *
 * Two masters taking over the same stale lock at the same instant could both win (the takeover is a rename, then
 * a link, and the other's rename can land between them); a crashed master restarted twice at once on one
 * directory is the only way to get there.
 */
export const LOCK_FILE = 'LOCK';

interface LockContent {
  pid: number;
  /** Start time of `pid` in clock ticks since boot, or null where /proc is not there. */
  start: number | null;
  /** Tells this holder's file from a later one with the same pid (close() removes only its own). */
  token: string;
}

export class DataDirLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly token: string,
  ) {}

  /** Takes the directory's lock (the directory must exist), or throws DataDirLockedError naming the holder. */
  static async acquire(dataDir: string): Promise<DataDirLock> {
    const file = join(dataDir, LOCK_FILE);
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
          return new DataDirLock(file, mine.token);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = await readLock(file);
        if (holder !== null && (await isHolder(holder))) throw new DataDirLockedError(dataDir, holder.pid);
        // Stale (its process is gone) or unreadable (not one of ours): move it aside, retry.
        const aside = `${file}.stale-${process.pid}-${mine.token}`;
        await rename(file, aside).catch(ignoreMissing);
        await unlink(aside).catch(ignoreMissing);
      }
    } finally {
      await unlink(temp).catch(ignoreMissing);
    }
    const holder = await readLock(file);
    throw new DataDirLockedError(dataDir, holder?.pid ?? null);
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

async function isHolder(holder: LockContent): Promise<boolean> {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user, which is still a holder.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.start === null) return true;
  const now = await startTimeOf(holder.pid);
  return now === null || now === holder.start;
}

async function startTimeOf(pid: number): Promise<number | null> {
  const stat = await readProcStat(pid);
  return stat !== undefined && Number.isFinite(stat.startTicks) ? stat.startTicks : null;
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
