import type { TableView } from '../../table/view.js';
import { GPU_NODE_PENALTY } from './policy.js';
import { meanAfter } from './utilization.js';

/**
 * Best fit: the fuller the node would be after placement, the better. Packing work onto few nodes
 * leaves whole nodes free for large tasks and lets idle ones be reclaimed. Mean of cpu and mem
 * utilisation, in [0, 1] (in fixed point: see meanAfter).
 */
export function binpackScore(v: TableView, row: number, cpu: number, mem: number, gpu: number): number {
  const s = meanAfter(v, row, cpu, mem);
  return gpu === 0 && v.capGpu[row]! > 0 ? s - GPU_NODE_PENALTY : s;
}
