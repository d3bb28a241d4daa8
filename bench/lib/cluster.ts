import type { NodeSpec } from '../../src/table/node-table.js';
import { Rng } from './rng.js';

/**
 * A heterogeneous cluster as clouds sell them: mostly general-purpose machines, some large
 * memory-heavy ones, a few GPU boxes of two models, spread over three zones and many racks.
 */
export const NODE_CLASSES = [
  { type: 'm.4xlarge', weight: 60, cpus: 16, memGi: 64, gpus: 0 },
  { type: 'c.8xlarge', weight: 15, cpus: 32, memGi: 64, gpus: 0 },
  { type: 'r.16xlarge', weight: 20, cpus: 64, memGi: 512, gpus: 0 },
  { type: 'p.8xlarge', weight: 5, cpus: 32, memGi: 256, gpus: 8 },
] as const;

export const ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'] as const;

export function generateCluster(nodes: number, seed: number): NodeSpec[] {
  const rng = new Rng(seed);
  const out: NodeSpec[] = [];
  const classes = NODE_CLASSES.map((c) => [c, c.weight] as const);
  for (let i = 0; i < nodes; i++) {
    const c = rng.weighted(classes);
    const zone = ZONES[i % ZONES.length]!;
    const attributes: Record<string, string> = {
      zone,
      rack: `${zone}-r${Math.floor(i / 40) % 64}`,
      instance_type: c.type,
    };
    if (c.gpus > 0) attributes.gpu_model = rng.next() < 0.5 ? 'a100' : 'h100';
    out.push({
      id: `node-${i}`,
      resources: { cpus: c.cpus, mem: `${c.memGi}Gi`, disk: '500Gi', gpus: c.gpus },
      ports: '31000-32000',
      attributes,
    });
  }
  return out;
}

/** Total cpus (cores) and mem (MiB) of a generated cluster, for sizing workloads. */
export function clusterCapacity(nodes: NodeSpec[]): { cpus: number; memMiB: number } {
  let cpus = 0;
  let memMiB = 0;
  for (const n of nodes) {
    cpus += Number(n.resources.cpus);
    memMiB += Number(String(n.resources.mem).replace('Gi', '')) * 1024;
  }
  return { cpus, memMiB };
}
