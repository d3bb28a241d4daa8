import { afterEach } from 'vitest';
import { Allocator } from '../../src/allocator/allocator.js';
import type { NodeSpec } from '../../src/table/node-table.js';

/**
 * `Allocator.create` for a test file, closing every allocator it made after each test (its threads would keep
 * the run alive). Call at the top level of the file.
 */
export function allocatorFixture(): (...args: Parameters<typeof Allocator.create>) => Promise<Allocator> {
  const open: Allocator[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((a) => a.close()));
  });
  return async (...args) => {
    const a = await Allocator.create(...args);
    open.push(a);
    return a;
  };
}

/** A small fixed cluster in a known order (the StaticIterator of these tests). */
export function nodes(n: number, opts: { cpus?: number; mem?: string; gpus?: number; zones?: string[] } = {}): NodeSpec[] {
  const zones = opts.zones ?? ['a', 'b', 'c'];
  const out: NodeSpec[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      id: `n${i}`,
      resources: { cpus: opts.cpus ?? 4, mem: opts.mem ?? '8Gi', disk: '100Gi', gpus: opts.gpus ?? 0 },
      ports: '31000-31009',
      attributes: { zone: zones[i % zones.length]!, rack: `r${i % 2}` },
    });
  }
  return out;
}
