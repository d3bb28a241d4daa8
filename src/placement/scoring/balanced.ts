import type { TableView } from '../../table/view.js';
import { GPU_NODE_PENALTY } from './policy.js';
import { cpuAfter, memAfter } from './utilization.js';

/**
 * Even use across dimensions: prefer the node whose cpu and mem utilisation would be closest
 * (kube-scheduler's BalancedAllocation). A node left with free cpu but no mem is capacity nobody
 * can use. 1 - |cpu - mem|, in [0, 1].
 */
export function balancedScore(v: TableView, row: number, cpu: number, mem: number, gpu: number): number {
  const d = cpuAfter(v, row, cpu) - memAfter(v, row, mem);
  const s = 1 - (d < 0 ? -d : d);
  return gpu === 0 && v.capGpu[row]! > 0 ? s - GPU_NODE_PENALTY : s;
}
