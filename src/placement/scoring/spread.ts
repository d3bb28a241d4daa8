import type { TableView } from '../../table/view.js';
import { GPU_NODE_PENALTY } from './policy.js';
import { meanAfter } from './utilization.js';

/**
 * Least allocated: the emptier the node would be after placement, the better. Spreading limits the
 * blast radius of a node failure and the noise neighbours make. 1 - mean utilisation, in [0, 1]
 * (in fixed point: see meanAfter).
 */
export function spreadScore(v: TableView, row: number, cpu: number, mem: number, gpu: number): number {
  const s = 1 - meanAfter(v, row, cpu, mem);
  return gpu === 0 && v.capGpu[row]! > 0 ? s - GPU_NODE_PENALTY : s;
}
