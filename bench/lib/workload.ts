import type { TaskRequest } from '../../src/allocator/allocator.js';
import type { ConstraintSpec } from '../../src/placement/constraints/compile.js';
import type { PolicyName } from '../../src/placement/scoring/policy.js';
import { ZONES } from './cluster.js';
import { Rng } from './rng.js';

/**
 * Tasks as services and batch jobs ask for them: mostly small, a long tail of large ones, a few GPU
 * tasks, grouped in jobs of 1..50 instances under four roles. 20% carry constraints: pinned or
 * excluded zones, an instance-type regex, a GPU model, one-per-zone limits, or distinct hosts.
 * Sizes are scaled so the whole workload asks for `fill` times the cluster's cpu, which makes the
 * cluster full by the end of a run (utilisation is then meaningful).
 */
const SIZES: readonly (readonly [{ cpus: number; memGi: number }, number])[] = [
  [{ cpus: 0.25, memGi: 0.5 }, 20],
  [{ cpus: 0.5, memGi: 1 }, 25],
  [{ cpus: 1, memGi: 2 }, 25],
  [{ cpus: 2, memGi: 4 }, 15],
  [{ cpus: 4, memGi: 8 }, 8],
  [{ cpus: 1, memGi: 8 }, 5],
  [{ cpus: 8, memGi: 32 }, 2],
];
const ROLES = ['search', 'ads', 'analytics', 'infra'] as const;

function baseMeanCpus(): number {
  let w = 0;
  let s = 0;
  for (const [size, weight] of SIZES) {
    s += size.cpus * weight;
    w += weight;
  }
  return s / w;
}

export interface WorkloadOptions {
  tasks: number;
  clusterCpus: number;
  seed: number;
  policy: PolicyName;
  /** Requested cpu over cluster cpu (1.05 = slightly oversubscribed, so the cluster fills). */
  fill?: number;
  constrainedShare?: number;
}

export function generateWorkload(o: WorkloadOptions): TaskRequest[] {
  const rng = new Rng(o.seed ^ 0x5eed);
  const fill = o.fill ?? 1.05;
  const scale = (fill * o.clusterCpus) / (o.tasks * baseMeanCpus());
  const constrained = o.constrainedShare ?? 0.2;
  const out: TaskRequest[] = [];
  let jobNo = 0;
  while (out.length < o.tasks) {
    const job = `job-${jobNo++}`;
    const instances = Math.min(o.tasks - out.length, 1 + rng.int(50));
    const role = rng.pick(ROLES);
    const size = rng.weighted(SIZES);
    const gpu = rng.next() < 0.02 ? 1 + rng.int(4) : 0;
    // Scaled sizes, kept at whole millicores and MiB, never below a sliver.
    const cpus = Math.max(0.01, Math.round(size.cpus * scale * 1000) / 1000);
    const mem = Math.max(16, Math.round(size.memGi * 1024 * scale));
    let constraints: ConstraintSpec[] | undefined;
    if (gpu > 0) {
      constraints = rng.next() < 0.5 ? [{ attribute: 'gpu_model', operator: '=', value: rng.pick(['a100', 'h100']) }] : undefined;
    } else if (rng.next() < constrained) {
      constraints = pickConstraints(rng, instances);
    }
    const priority = rng.next() < 0.1 ? 10 : 0;
    for (let i = 0; i < instances; i++) {
      const t: TaskRequest = {
        id: `${job}/${i}`,
        job,
        role,
        priority,
        resources: { cpus, mem, ports: rng.next() < 0.5 ? 1 : 0, gpus: gpu },
        policy: o.policy,
      };
      if (constraints) t.constraints = constraints;
      out.push(t);
    }
  }
  return out;
}

function pickConstraints(rng: Rng, instances: number): ConstraintSpec[] {
  const kind = rng.int(6);
  switch (kind) {
    case 0:
      return [{ attribute: 'zone', operator: '=', value: rng.pick(ZONES) }];
    case 1:
      return [{ attribute: 'zone', operator: '!=', value: rng.pick(ZONES) }];
    case 2:
      return [{ attribute: 'instance_type', operator: '~', value: '(m|c)\\..*' }];
    case 3:
      // One-per-zone only makes sense for small jobs; larger ones get a per-zone quota.
      return [{ attribute: 'zone', operator: 'limit', value: Math.max(1, Math.ceil(instances / 3)) }];
    case 4:
      return [{ operator: 'distinct_hosts' }];
    default:
      return [
        { attribute: 'zone', operator: '!=', value: rng.pick(ZONES) },
        { attribute: 'rack', operator: 'limit', value: 2 },
      ];
  }
}
