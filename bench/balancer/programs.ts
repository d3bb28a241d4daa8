/** Finding the external programs the benchmark drives, and the harness's own Node scripts. */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Run through tsx (tests, `node --import tsx`) rather than from the compiled dist/. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
/** The repository root: bench/balancer/ in source, dist/bench/balancer/ when built. */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), FROM_SOURCE ? '../..' : '../../..');

/**
 * Node arguments that run a module of this repository, given without extension
 * (`bench/balancer/counting-backend`): the compiled file when the harness itself is compiled, the
 * TypeScript through tsx otherwise, so tests need no build. Children run with cwd REPO_ROOT so
 * `--import tsx` resolves.
 */
export function nodeModuleArgs(rel: string): string[] {
  return FROM_SOURCE ? ['--import', 'tsx', join(REPO_ROOT, `${rel}.ts`)] : [join(REPO_ROOT, 'dist', `${rel}.js`)];
}

/** The file nodeModuleArgs(rel) would run, to check it exists before relying on it. */
export function nodeModuleFile(rel: string): string {
  return FROM_SOURCE ? join(REPO_ROOT, `${rel}.ts`) : join(REPO_ROOT, 'dist', `${rel}.js`);
}

/** Debian puts nginx and haproxy in sbin, which is not on every user's PATH. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of an executable on PATH (or in sbin), or null when it is not installed. */
export function findProgram(name: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const f = join(d, name);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return null;
}

export function fileExists(f: string): boolean {
  return existsSync(f);
}
