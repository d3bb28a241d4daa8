import type { TableView } from '../../table/view.js';
import { type CompiledConstraints, OP_STRIDE, Op } from '../constraints/compiled.js';
import type { JobPlacementState } from '../constraints/job-state.js';
import { Reason } from '../status.js';

/**
 * Evaluates a compiled constraint program on a row. Returns Reason.NONE, or the reason of the first
 * constraint that fails: CONSTRAINT_BASE + index for attribute tests, LIMIT or DISTINCT_HOSTS for
 * job-scoped ones. Attribute tests run first in the program's order; they are int compares.
 * `job` may be null only for sets that are not job-scoped.
 */
export function constraintsFit(v: TableView, row: number, cset: CompiledConstraints, job: JobPlacementState | null): number {
  const p = cset.program;
  const base = row * v.maxAttrKeys;
  for (let i = 0, k = 0; i < p.length; i += OP_STRIDE, k++) {
    const op = p[i]!;
    const slot = p[i + 1]!;
    const arg = p[i + 2]!;
    const value = slot >= 0 ? v.attrs[base + slot]! : 0;
    switch (op) {
      case Op.EQ:
        if (value !== arg) return Reason.CONSTRAINT_BASE + k;
        break;
      case Op.NE:
        if (value === arg) return Reason.CONSTRAINT_BASE + k;
        break;
      case Op.IN_SET:
        if (value === 0 || cset.matchSets[arg]![value] !== 1) return Reason.CONSTRAINT_BASE + k;
        break;
      case Op.LIMIT:
        // A node without the attribute cannot be counted against the limit, so it is not eligible.
        if (value === 0) return Reason.CONSTRAINT_BASE + k;
        if (job !== null && (job.valueCounts[k]!.get(value) ?? 0) >= arg) return Reason.LIMIT;
        break;
      case Op.DISTINCT_HOSTS:
        if (job !== null && job.rows.has(row)) return Reason.DISTINCT_HOSTS;
        break;
      default:
        break;
    }
  }
  return Reason.NONE;
}
