import { readFileSync, readdirSync } from 'node:fs';
import { parseProcStat } from '../../src/agent/isolation/proc.js';

/**
 * CPU time per OS thread of this process, from /proc (Linux; null elsewhere). Wall-clock throughput on
 * a shared 2-core machine says how fast a run was; this says where the cores went: the allocator's
 * thread, each placement thread, and V8's own threads (garbage collection, optimising compiler).
 * It is CPU consumed, so it barely moves when another process competes for the cores.
 */
export type ThreadTimes = Map<number, number>;

export function threadTimes(): ThreadTimes | null {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  const out: ThreadTimes = new Map();
  for (const tid of tids) {
    try {
      const stat = parseProcStat(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8'));
      if (stat !== undefined) out.set(Number(tid), Math.round(stat.cpuSeconds * 1000));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

export interface CpuSplit {
  /** The thread that called the allocator (and ran the benchmark's own submission loop). */
  allocatorThreadMs: number;
  /** One entry per placement thread, largest first. */
  placementThreadsMs: number[];
  /** Everything else in the process: V8's garbage collector and compiler threads, libuv. */
  otherThreadsMs: number;
}

/** Splits the CPU used between two snapshots; `placement` are the allocator's thread ids (placementThreadIds()). */
export function cpuSplit(before: ThreadTimes, after: ThreadTimes, placement: ReadonlySet<number>): CpuSplit {
  const main = process.pid;
  let allocatorThreadMs = 0;
  let otherThreadsMs = 0;
  const placementThreadsMs: number[] = [];
  for (const [tid, ms] of after) {
    const used = ms - (before.get(tid) ?? 0);
    if (tid === main) allocatorThreadMs = used;
    else if (placement.has(tid)) placementThreadsMs.push(used);
    else otherThreadsMs += used;
  }
  placementThreadsMs.sort((a, b) => b - a);
  return { allocatorThreadMs, placementThreadsMs, otherThreadsMs };
}
