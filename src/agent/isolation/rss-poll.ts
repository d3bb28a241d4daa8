/**
 * The fallback when no cgroup can be created (not root, read-only cgroupfs, a container without delegation):
 * sample the task's process tree from /proc and SIGKILL its process group when the summed RSS exceeds the limit.
 *
 * It is only approximate, and strictly weaker than a cgroup:
 * - it sees memory only at each poll, so a fast allocator can overshoot for up to one interval (or, if it
 *   allocates fast enough, run the machine short before the next poll);
 * - RSS counts shared pages (libraries, shared memory) once per process, so trees of forked workers look bigger
 *   than they are, while page cache and kernel memory the task causes are not counted at all;
 * - a process that both leaves the process group and is orphaned escapes the walk (see taskProcesses);
 * - CPU is reported but not limited.
 */
import { ClosedError, InvalidArgumentError } from '../../api/errors.js';
import type { Isolator, IsolatorHandle, ResourceLimits, ResourceUsage } from './types.js';
import { checkLimits, checkTaskId, memoryLimitBytes } from './limits.js';
import { readProcessTable, systemPageSize, taskProcesses } from './proc.js';
import type { ProcStat } from './proc.js';

export interface RssPollOptions {
  /** How often each task's tree is measured. */
  intervalMs?: number;
  /** Where procfs is mounted. */
  procRoot?: string;
}

/**
 * 100 ms bounds the overshoot of a fast allocator to what it can touch in 100 ms, while one scan of /proc (a few
 * hundred small reads) stays a small fraction of a core even with dozens of tasks.
 */
const DEFAULT_INTERVAL_MS = 100;

class RssHandle implements IsolatorHandle {
  pid: number | undefined;
  timer: NodeJS.Timeout | undefined;
  polling = false;
  oomKilled = false;
  destroyed = false;
  constructor(
    readonly taskId: string,
    readonly limits: Readonly<ResourceLimits>,
  ) {}
}

export class RssPollIsolator implements Isolator {
  readonly name = 'rss-poll' as const;
  readonly controllers: readonly string[] = ['procfs'];
  readonly intervalMs: number;
  readonly #procRoot: string;

  constructor(opts: RssPollOptions = {}) {
    const intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 1) {
      throw new InvalidArgumentError(`rss-poll interval ${intervalMs} ms must be at least 1`, [
        { path: 'intervalMs', message: 'must be a number of milliseconds >= 1' },
      ]);
    }
    this.intervalMs = intervalMs;
    this.#procRoot = opts.procRoot ?? '/proc';
  }

  async prepare(taskId: string, limits: ResourceLimits): Promise<IsolatorHandle> {
    return new RssHandle(checkTaskId(taskId), checkLimits(limits));
  }

  async attach(handle: IsolatorHandle, pid: number): Promise<void> {
    const h = this.#own(handle);
    if (h.pid !== undefined) throw new InvalidArgumentError(`task ${h.taskId} is already attached to pid ${h.pid}`);
    h.pid = pid;
    h.timer = setInterval(() => void this.#poll(h), this.intervalMs);
    h.timer.unref(); // the task's child process keeps the agent alive, not this timer
  }

  async usage(handle: IsolatorHandle): Promise<ResourceUsage> {
    const h = this.#own(handle);
    if (h.pid === undefined) return { rssBytes: 0, cpuSeconds: 0 };
    return summarize(await this.#members(h), h.pid);
  }

  async wasOomKilled(handle: IsolatorHandle): Promise<boolean> {
    return this.#handle(handle).oomKilled;
  }

  async destroy(handle: IsolatorHandle): Promise<void> {
    const h = this.#handle(handle);
    h.destroyed = true;
    clearInterval(h.timer);
    h.timer = undefined;
    // Stragglers in the process group are the executor's to kill: it does so synchronously on the leader's exit,
    // before the pid can be reused, which this asynchronous path could not promise.
  }

  async close(): Promise<void> {
    // Nothing outlives the tasks.
  }

  async #members(h: RssHandle): Promise<ProcStat[]> {
    // The executor starts every task in its own process group, so the group id is the leader's pid.
    return taskProcesses(await readProcessTable(this.#procRoot), h.pid!, h.pid!);
  }

  async #poll(h: RssHandle): Promise<void> {
    if (h.polling || h.destroyed || h.oomKilled) return;
    h.polling = true;
    try {
      const members = await this.#members(h);
      if (h.destroyed) return;
      const { rssBytes } = summarize(members, h.pid!);
      if (rssBytes <= memoryLimitBytes(h.limits)) return;
      h.oomKilled = true;
      clearInterval(h.timer);
      // The whole group first (one syscall, no fork race within the group), then any tree member outside it.
      signal(-h.pid!);
      for (const p of members) signal(p.pid);
    } catch {
      // /proc unreadable for a moment: the next poll tries again.
    } finally {
      h.polling = false;
    }
  }

  #handle(handle: IsolatorHandle): RssHandle {
    if (!(handle instanceof RssHandle)) throw new InvalidArgumentError('handle was not prepared by the rss-poll isolator');
    return handle;
  }

  #own(handle: IsolatorHandle): RssHandle {
    const h = this.#handle(handle);
    if (h.destroyed) throw new ClosedError(`rss-poll tracking of task ${h.taskId}`);
    return h;
  }
}

function summarize(members: readonly ProcStat[], rootPid: number): ResourceUsage {
  const page = systemPageSize();
  let rssBytes = 0;
  let cpuSeconds = 0;
  for (const p of members) {
    rssBytes += p.rssPages * page;
    cpuSeconds += p.cpuSeconds;
    // The leader's counter of reaped children covers descendants that already exited.
    if (p.pid === rootPid) cpuSeconds += p.childCpuSeconds;
  }
  return { rssBytes, cpuSeconds };
}

function signal(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // ESRCH: already gone.
  }
}
