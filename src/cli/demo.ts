import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobSpec } from '../master/types.js';

/** The package root: two levels above src/cli in the sources, three above dist/src/cli when built. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'examples'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the borealis package root (examples/ next to package.json)');
}

/**
 * The demo service's spec (examples/demo-service.json), made runnable from any task sandbox: `node` becomes this
 * Node binary and the script path becomes absolute (tasks start in their own sandbox folder, not the repo). It is
 * routed through the balancer (any host, every path) unless the file says otherwise.
 */
export function demoServiceSpec(root = packageRoot()): JobSpec {
  const spec = JSON.parse(readFileSync(join(root, 'examples', 'demo-service.json'), 'utf8')) as JobSpec;
  if (Array.isArray(spec.command)) {
    spec.command = spec.command.map((arg, i) => {
      if (i === 0 && arg === 'node') return process.execPath;
      return !isAbsolute(arg) && existsSync(join(root, arg)) ? resolve(root, arg) : arg;
    });
  }
  // Equal weights: `up`'s agents differ in size, and weights by cpus would send every one of a person's sequential
  // curls to the instance on the biggest agent; equal ones answer in turn.
  spec.http ??= { pathPrefix: '/', weight: 1 };
  return spec;
}
