/** Turning a task's command into what is actually exec'd. */
import { access, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import path from 'node:path';
import type { TaskCommand } from './types.js';

/**
 * Every task starts as this tiny shell, which waits for one line on fd 3 and then execs the real command in its
 * own place (same pid). The agent writes that line only after the isolator has attached the pid, so the task's
 * first instruction already runs inside its cgroup, and nothing it forks can escape accounting (cgroup v1 does
 * not move existing children). Mesos' launcher holds its child on a pipe for the same reason. If the agent dies
 * before saying go, read hits EOF and the task never starts (exit 125).
 */
const TRAMPOLINE = 'read -r _ <&3 || exit 125; exec 3<&-; exec "$@"';

export const SHELL = '/bin/sh';

/** The argv to hand to the trampoline: the task's own argv, or `/bin/sh -c <string>`. */
export function commandArgv(command: TaskCommand): string[] {
  return 'argv' in command ? [...command.argv] : [SHELL, '-c', command.shell];
}

/** argv for spawn(SHELL, ...): `sh -c TRAMPOLINE borealis-exec <argv...>` ($0 names the wrapper in ps). */
export function trampolineArgs(argv: readonly string[]): string[] {
  return ['-c', TRAMPOLINE, 'borealis-exec', ...argv];
}

/**
 * Finds an executable the way execvp would (PATH search unless the name contains a slash), so that a missing
 * command is reported as failed_to_start before anything is spawned rather than as the shell's exit 127.
 */
export async function resolveExecutable(name: string, pathVar: string, cwd: string): Promise<string | undefined> {
  if (name.includes('/')) {
    const candidate = path.resolve(cwd, name);
    return (await isExecutableFile(candidate)) ? candidate : undefined;
  }
  for (const dir of pathVar.split(':')) {
    // An empty PATH entry means the current directory (POSIX).
    const candidate = path.resolve(cwd, dir === '' ? '.' : dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}
