/**
 * Garbage collection of ended tasks' sandboxes (Mesos' agent gc of executor directories).
 *
 * A sandbox outlives its task so that someone can read its stdout and stderr after a crash; but a crash-looping
 * service leaves one per attempt, and the disk must not fill with them. A sandbox is kept while it is among the
 * newest `keepNewest` ended ones, or younger than `maxAgeMs`; one that is neither is deleted. Sandboxes of tasks the
 * agent still runs are never touched.
 *
 * A sandbox's age is the newest modification time of the directory and its stdout/stderr: the last thing its task
 * wrote, so roughly when it ended, and correct also for sandboxes an earlier agent process left behind.
 */
import type { Dirent } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export interface SandboxGcOptions {
  /** How many of the most recent ended sandboxes are kept whatever their age (default 50). */
  keepNewest?: number;
  /** Ended sandboxes younger than this are kept whatever their number (default 1 h). */
  maxAgeMs?: number;
}

/**
 * 50 attempts is a long crash loop's worth of evidence; an hour leaves time to look at a failure someone was paged
 * for. Both are Mesos-like orders of magnitude (its gc_delay is a week, bounded by disk use, on far larger disks).
 */
export const DEFAULT_SANDBOX_GC = { keepNewest: 50, maxAgeMs: 3_600_000 } as const;

/** The files whose modification times say when a task last wrote (see openSandbox). */
const LOG_FILES = ['stdout', 'stderr'] as const;

export class SandboxGc {
  readonly keepNewest: number;
  readonly maxAgeMs: number;
  readonly #root: string;
  readonly #log: (line: string) => void;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(root: string, opts: SandboxGcOptions, log: (line: string) => void) {
    this.#root = root;
    this.keepNewest = opts.keepNewest ?? DEFAULT_SANDBOX_GC.keepNewest;
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_SANDBOX_GC.maxAgeMs;
    this.#log = log;
  }

  /**
   * Collects now, sparing the sandboxes of `active()` task ids. Calls while a pass runs coalesce into one more pass
   * after it (the ids are read again then). Never rejects: a failure is logged and the next task's end retries.
   */
  collect(active: () => ReadonlySet<string>): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#pass(active(), Date.now());
        } catch (err) {
          this.#log(`sandbox gc failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      } while (this.#again);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Resolves once no pass is running (for a clean stop). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #pass(active: ReadonlySet<string>, now: number): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.#root, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const ended: { dir: string; at: number }[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || active.has(e.name)) continue;
      const dir = path.join(this.#root, e.name);
      const at = await lastWrite(dir);
      if (at !== undefined) ended.push({ dir, at });
    }
    ended.sort((a, b) => b.at - a.at);
    let removed = 0;
    for (let i = this.keepNewest; i < ended.length; i++) {
      const s = ended[i]!;
      if (now - s.at <= this.maxAgeMs) continue;
      await rm(s.dir, { recursive: true, force: true });
      removed++;
    }
    if (removed > 0) this.#log(`sandbox gc: removed ${removed} ended sandbox(es), kept ${ended.length - removed}`);
  }
}

/** The newest mtime of a sandbox and its log files; undefined when it vanished meanwhile. */
async function lastWrite(dir: string): Promise<number | undefined> {
  let at: number;
  try {
    at = (await stat(dir)).mtimeMs;
  } catch {
    return undefined;
  }
  for (const f of LOG_FILES) {
    try {
      at = Math.max(at, (await stat(path.join(dir, f))).mtimeMs);
    } catch {
      // a task that failed before its sandbox was complete
    }
  }
  return at;
}
