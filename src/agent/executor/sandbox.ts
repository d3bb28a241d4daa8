/** The task's sandbox: its working directory `<workDir>/<taskId>/`, holding its `stdout` and `stderr` files. */
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

export interface Sandbox {
  dir: string;
  stdout: FileHandle;
  stderr: FileHandle;
}

export function sandboxDir(workDir: string, taskId: string): string {
  return path.join(path.resolve(workDir), taskId);
}

/**
 * Creates the directory and opens both log files. Append mode keeps what an earlier attempt wrote, and lets
 * several processes of the task write without clobbering each other's output.
 */
export async function openSandbox(workDir: string, taskId: string): Promise<Sandbox> {
  const dir = sandboxDir(workDir, taskId);
  await mkdir(dir, { recursive: true });
  const stdout = await open(path.join(dir, 'stdout'), 'a');
  try {
    const stderr = await open(path.join(dir, 'stderr'), 'a');
    return { dir, stdout, stderr };
  } catch (err) {
    await stdout.close();
    throw err;
  }
}
