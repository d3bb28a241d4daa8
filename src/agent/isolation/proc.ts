/** Reading the process table from /proc, for the rss-poll isolator and for liveness checks. */
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { endianness } from 'node:os';

/**
 * utime/stime in /proc are in USER_HZ ticks. USER_HZ is part of the kernel ABI and is 100 on every Linux
 * architecture Node runs on (sysconf(_SC_CLK_TCK)), independent of the kernel's internal HZ.
 */
const USER_HZ = 100;

/** auxv entry type carrying the page size (see getauxval(3)). */
const AT_PAGESZ = 6n;

export interface ProcStat {
  pid: number;
  /** One of R S D Z T t X I ...; Z is a zombie (exited, not yet reaped). */
  state: string;
  ppid: number;
  pgrp: number;
  /** Own CPU time plus that of reaped children, in seconds. */
  cpuSeconds: number;
  childCpuSeconds: number;
  rssPages: number;
  /**
   * When the process started, in USER_HZ ticks since boot (field 22). Together with the pid it names one process
   * for good: a pid is recycled, a (pid, start time) pair is not.
   */
  startTicks: number;
}

/**
 * Parses /proc/<pid>/stat. The command name is in parentheses and may itself contain spaces and ')', so fields are
 * counted from the last ')'.
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const f = text.slice(close + 2).trim().split(' ');
  if (f.length < 22) return undefined;
  return {
    pid,
    state: f[0]!,
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    cpuSeconds: (Number(f[11]) + Number(f[12])) / USER_HZ,
    childCpuSeconds: (Number(f[13]) + Number(f[14])) / USER_HZ,
    rssPages: Number(f[21]),
    startTicks: Number(f[19]),
  };
}

export async function readProcStat(pid: number, procRoot = '/proc'): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // gone between readdir and read, or never existed
  }
}

/** Every process visible in /proc. Costs one read per process, which is why callers poll, not spin. */
export async function readProcessTable(procRoot = '/proc'): Promise<ProcStat[]> {
  const names = await readdir(procRoot);
  const stats = await Promise.all(names.filter((n) => /^\d+$/.test(n)).map((n) => readProcStat(Number(n), procRoot)));
  return stats.filter((s): s is ProcStat => s !== undefined);
}

/**
 * The processes of one task: the root, everything descended from it (by ppid), and everything in its process
 * group. The group catches children orphaned by a parent that exited (reparented to init, so off the ppid tree);
 * the ppid walk catches children that moved to another group. A child that did both is invisible: that is one of
 * the reasons rss-poll is approximate, and cgroups are preferred.
 */
export function taskProcesses(table: readonly ProcStat[], rootPid: number, pgid: number): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const p of table) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const seen = new Map<number, ProcStat>();
  const root = table.find((p) => p.pid === rootPid);
  const queue: ProcStat[] = root ? [root] : [];
  for (const p of table) if (p.pgrp === pgid) queue.push(p);
  while (queue.length > 0) {
    const p = queue.pop()!;
    if (seen.has(p.pid)) continue;
    seen.set(p.pid, p);
    for (const c of children.get(p.pid) ?? []) queue.push(c);
  }
  return [...seen.values()].filter((p) => p.state !== 'Z' && p.state !== 'X');
}

let pageSize: number | undefined;

/** The kernel page size, from the auxiliary vector (Node has no sysconf); 4096 if that cannot be read. */
export function systemPageSize(): number {
  if (pageSize !== undefined) return pageSize;
  pageSize = 4096;
  try {
    const auxv = readFileSync('/proc/self/auxv');
    const le = endianness() === 'LE';
    for (let off = 0; off + 16 <= auxv.length; off += 16) {
      const type = le ? auxv.readBigUInt64LE(off) : auxv.readBigUInt64BE(off);
      if (type === AT_PAGESZ) {
        pageSize = Number(le ? auxv.readBigUInt64LE(off + 8) : auxv.readBigUInt64BE(off + 8));
        break;
      }
      if (type === 0n) break;
    }
  } catch {
    // keep the default
  }
  return pageSize;
}

/** True while the process exists and has not exited; a zombie has exited, it only awaits its parent's wait(). */
export function isAlive(pid: number): boolean {
  try {
    const stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
  } catch {
    return false;
  }
}

/** One process for good: a pid is recycled, a (pid, start time) pair is not. */
export interface ProcessIdentity {
  pid: number;
  /** Start time in USER_HZ ticks since boot, field 22 of /proc/<pid>/stat. */
  startTicks: number;
}

/** The identity of a live process; undefined when it is gone or a zombie (it has exited; only its pid remains). */
export async function liveIdentity(pid: number): Promise<ProcessIdentity | undefined> {
  const stat = await readProcStat(pid);
  if (stat === undefined || stat.state === 'Z' || stat.state === 'X' || !Number.isFinite(stat.startTicks)) return undefined;
  return { pid, startTicks: stat.startTicks };
}

/** Whether `id` still names a live process: same pid, same start time. */
export async function isSameProcess(id: ProcessIdentity): Promise<boolean> {
  return (await liveIdentity(id.pid))?.startTicks === id.startTicks;
}
