import type { TableView } from '../../table/view.js';
import { balancedScore } from './balanced.js';
import { binpackScore } from './binpack.js';
import { Policy } from './policy.js';
import { spreadScore } from './spread.js';

export * from './policy.js';
export { balancedScore, binpackScore, spreadScore };

/** Dispatch by policy code; a switch on a small int stays monomorphic for the JIT. */
export function score(policy: number, v: TableView, row: number, cpu: number, mem: number, gpu: number): number {
  switch (policy) {
    case Policy.SPREAD:
      return spreadScore(v, row, cpu, mem, gpu);
    case Policy.BALANCED:
      return balancedScore(v, row, cpu, mem, gpu);
    default:
      return binpackScore(v, row, cpu, mem, gpu);
  }
}
