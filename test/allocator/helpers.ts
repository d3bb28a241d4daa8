import type { NodeSpec } from '../../src/table/node-table.js';

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
