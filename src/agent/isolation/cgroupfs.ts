/**
 * Small file-level helpers shared by the cgroup v1 and v2 isolators. cgroupfs is just files: limits are written,
 * counters are read, membership is a pid written to `cgroup.procs`, and a cgroup is removed with rmdir once empty.
 */
import { readFile, rmdir, writeFile, mkdir, access } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { ClosedError, InvalidArgumentError } from '../../api/errors.js';
import type { IsolatorHandle, ResourceLimits } from './types.js';

/**
 * How long `drain` waits for killed processes to leave a cgroup: SIGKILL is asynchronous, and a process in
 * uninterruptible sleep (D state, e.g. stuck on I/O) only dies when the I/O returns. 100 x 20 ms = 2 s.
 */
const DRAIN_ROUNDS = 100;
const DRAIN_DELAY_MS = 20;

/** Creating a cgroup path races only with other agents tidying a shared parent; a few retries settle it. */
const MKDIR_ATTEMPTS = 5;

/** rmdir can briefly answer EBUSY while the kernel finishes tearing down exited tasks; retry for up to 1 s. */
const RMDIR_ROUNDS = 50;
const RMDIR_DELAY_MS = 20;

export interface MountEntry {
  mountPoint: string;
  /** The path inside the filesystem that is mounted here ('/' unless a cgroup namespace or bind mount). */
  root: string;
  fsType: string;
  superOptions: string[];
}

/** Parses /proc/self/mountinfo (see proc(5)); the optional fields end at the lone "-". */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    out.push({
      root: unescapeMount(fields[3]!),
      mountPoint: unescapeMount(fields[4]!),
      fsType: fields[dash + 1]!,
      superOptions: fields[dash + 3]!.split(','),
    });
  }
  return out;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export async function readMountinfo(): Promise<string> {
  return readFile('/proc/self/mountinfo', 'utf8');
}

/** Controller name -> mount point for every cgroup v1 hierarchy (co-mounted controllers share a mount point). */
export function v1Hierarchies(mounts: readonly MountEntry[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    for (const opt of m.superOptions) {
      if (opt === 'rw' || opt === 'ro' || opt.includes('=')) continue;
      if (!out.has(opt)) out.set(opt, m.mountPoint);
    }
  }
  return out;
}

export function v2MountPoint(mounts: readonly MountEntry[]): string | undefined {
  return mounts.find((m) => m.fsType === 'cgroup2')?.mountPoint;
}

/** Parses flat-keyed cgroup files (`memory.events`, `cpu.stat`, v1 `memory.oom_control`) into numbers. */
export function parseKeyedCounters(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s*$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * The agent's cgroup root is a relative path under each hierarchy; refusing absolute paths and `..` keeps a
 * typo in a flag from turning `destroy` loose on someone else's cgroups.
 */
export function checkCgroupRoot(root: string): string {
  const parts = root.split('/').filter((p) => p !== '');
  if (parts.length === 0 || root.startsWith('/') || parts.some((p) => p === '.' || p === '..')) {
    throw new InvalidArgumentError(`cgroup root ${JSON.stringify(root)} must be a relative path without . or ..`, [
      { path: 'root', message: 'relative path expected, like borealis/agent-1' },
    ]);
  }
  return parts.join('/');
}

export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8');
}

export async function readNumber(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8')).trim());
}

/** Writes one value; kernel errors (EINVAL, EBUSY) name the file, since the bare errno says nothing useful. */
export async function writeValue(file: string, value: string | number): Promise<void> {
  try {
    await writeFile(file, String(value));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cannot write ${JSON.stringify(String(value))} to ${file}: ${e.code ?? e.message}`, { cause: err });
  }
}

/** Best-effort write, for knobs that not every kernel has (memsw without swap accounting, memory.oom.group). */
export async function tryWriteValue(file: string, value: string | number): Promise<boolean> {
  try {
    await writeFile(file, String(value));
    return true;
  } catch {
    return false;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * mkdir -p, one level at a time: recursive mkdir reports a read-only cgroupfs as ENOENT, which would send an
 * operator looking for a missing mount instead of a read-only one.
 */
export async function makeDir(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  const levels: string[] = [];
  for (let d = abs; d !== path.dirname(d); d = path.dirname(d)) levels.unshift(d);
  for (let attempt = 1; ; attempt++) {
    try {
      for (const level of levels) await mkdirOnce(level);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT: another agent's close() removed a shared parent (borealis/) between two of our levels.
      if (code === 'ENOENT' && attempt < MKDIR_ATTEMPTS) continue;
      throw new Error(`cannot create ${abs}: ${code ?? String(err)}`, { cause: err });
    }
  }
}

async function mkdirOnce(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

export async function listProcs(dir: string): Promise<number[]> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'cgroup.procs'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
}

/**
 * SIGKILLs everything in a cgroup until it is empty. Each round re-reads the member list because a process can
 * fork between our read and our kill; SIGKILL is used directly because by now the task's leader is gone and there
 * is nobody left to shut down gracefully.
 */
export async function drain(dir: string): Promise<void> {
  for (let round = 0; round < DRAIN_ROUNDS; round++) {
    const pids = await listProcs(dir);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ESRCH: already gone.
      }
    }
    await sleep(DRAIN_DELAY_MS);
  }
  const left = await listProcs(dir);
  if (left.length > 0) throw new Error(`processes ${left.join(',')} are still in ${dir} after SIGKILL`);
}

/** rmdir with retries on EBUSY; a missing directory is already removed. */
export async function removeDir(dir: string): Promise<void> {
  for (let round = 0; ; round++) {
    try {
      await rmdir(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || round >= RMDIR_ROUNDS) throw err;
      await sleep(RMDIR_DELAY_MS);
    }
  }
}

/**
 * Removes the agent's root (and its parents up to the hierarchy's mount) where empty. Other agents or live tasks
 * make a level non-empty, and that is fine: they keep it.
 */
export async function removeEmptyLevels(mountPoint: string, root: string): Promise<void> {
  const parts = root.split('/');
  for (let n = parts.length; n > 0; n--) {
    try {
      await rmdir(path.join(mountPoint, ...parts.slice(0, n)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      return; // EBUSY / ENOTEMPTY: still in use.
    }
  }
}

/**
 * What both isolators keep per task: its limits, its distinct cgroup directories (co-mounted v1 controllers share
 * one) and whether destroy has run, so that a second destroy is a no-op and any other use of the handle is refused.
 */
export class CgroupHandle implements IsolatorHandle {
  destroyed = false;
  constructor(
    readonly taskId: string,
    readonly limits: Readonly<ResourceLimits>,
    readonly dirs: readonly string[],
  ) {}
}

/** The handle as the isolator's own type; a handle from another isolator is a caller bug. */
export function handleOf<H extends CgroupHandle>(handle: IsolatorHandle, type: abstract new (...args: never[]) => H, isolator: string): H {
  if (!(handle instanceof type)) throw new InvalidArgumentError(`handle was not prepared by the ${isolator} isolator`);
  return handle;
}

/** As handleOf, and refused once destroyed: its cgroup is gone. */
export function liveHandleOf<H extends CgroupHandle>(handle: IsolatorHandle, type: abstract new (...args: never[]) => H, isolator: string): H {
  const h = handleOf(handle, type, isolator);
  if (h.destroyed) throw new ClosedError(`cgroup of task ${h.taskId}`);
  return h;
}

/** Creates a task's cgroup; one left by a crashed agent for the same task id holds stale processes and counters. */
export async function makeFreshDir(dir: string, kill: (dir: string) => Promise<void>): Promise<void> {
  if (await exists(dir)) {
    await kill(dir);
    await removeDir(dir);
  }
  await makeDir(dir);
}

/**
 * Empties and removes a task's cgroup left behind by an agent process that died (see orphan-reaper.ts). False when
 * `dir` is not a cgroup (already removed). `cgroup.kill` (v2, kernel 5.14+) kills everything with no fork race;
 * `drain` covers cgroup v1 and older kernels, and waits for the kernel to finish the kills before rmdir.
 */
export async function killAndRemoveCgroup(dir: string): Promise<boolean> {
  if (!(await exists(path.join(dir, 'cgroup.procs')))) return false;
  await killCgroup(dir);
  await removeDir(dir);
  return true;
}

/** Kills every process in a cgroup (cgroup.kill at once where the kernel has it: v2, 5.14+) and waits it empty. */
export async function killCgroup(dir: string): Promise<void> {
  // Checked first: on a directory that is not a cgroup (v1's, a test's) the write would create the file.
  const kill = path.join(dir, 'cgroup.kill');
  if (await exists(kill)) await tryWriteValue(kill, 1);
  await drain(dir);
}

/** Removes directories a failed prepare created; the original error is what the caller reports. */
export async function removeDirsQuietly(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) await removeDir(dir).catch(() => undefined);
}

/**
 * Destroys a task's cgroups once. Processes that left the task's process group (setsid, double fork) are still in
 * the cgroup, so every directory is emptied with `kill` before any is removed.
 */
export async function destroyHandle(h: CgroupHandle, kill: (dir: string) => Promise<void>): Promise<void> {
  if (h.destroyed) return;
  h.destroyed = true;
  for (const dir of h.dirs) await kill(dir);
  for (const dir of h.dirs) await removeDir(dir);
}
