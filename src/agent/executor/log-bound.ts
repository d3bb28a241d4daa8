/**
 * Keeps a task's `stdout` and `stderr` bounded, as logrotate's copytruncate does (and Nomad's `logs` block bounds
 * a task's files): when a file passes the limit, its content becomes `<file>.1` (replacing the generation before)
 * and the file is emptied in place. The task writes through its own descriptor opened for appending, so its next
 * write lands at the new end; what it writes between the copy and the truncate is lost — a few bytes, and only
 * for a task that writes that much. Checked on the usage sampler's beat, so a file may pass the limit by what the
 * task writes in one beat.
 */
import { copyFile, stat, truncate } from 'node:fs/promises';
import path from 'node:path';

/** Per file: the live one plus one previous generation, so a task's logs take at most about twice this. */
export const DEFAULT_MAX_LOG_BYTES = 64 * 1024 * 1024;
export const LOG_FILES = ['stdout', 'stderr'] as const;

/** Rotates each of the sandbox's log files that is over `maxBytes`; returns the names rotated. */
export async function boundLogs(sandboxDir: string, maxBytes: number): Promise<string[]> {
  const rotated: string[] = [];
  for (const name of LOG_FILES) {
    const file = path.join(sandboxDir, name);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      continue; // not there (yet, or the sandbox was collected)
    }
    if (size <= maxBytes) continue;
    await copyFile(file, `${file}.1`);
    await truncate(file, 0);
    rotated.push(name);
  }
  return rotated;
}
