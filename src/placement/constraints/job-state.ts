import type { TableView } from '../../table/view.js';
import { type CompiledConstraints, OP_STRIDE, Op } from './compiled.js';

/**
 * What LIMIT and DISTINCT_HOSTS need to know about a job's other instances: which rows hold them,
 * and how many sit under each value of each limited attribute. Built once per job per dispatch from
 * the rows the allocator sends (values are read from the table, so they are never out of step with
 * it), then kept current as this thread places more instances.
 */
export class JobPlacementState {
  readonly rows = new Map<number, number>();
  /** Bumped by every add: a verdict about this job holds only at the version it was made at. */
  version = 0;
  /** One map per program entry (empty for non-LIMIT entries): value id -> instances. */
  readonly valueCounts: Map<number, number>[];
  private readonly cset: CompiledConstraints;

  constructor(cset: CompiledConstraints, rows: ArrayLike<number>, v: TableView) {
    this.cset = cset;
    const n = cset.program.length / OP_STRIDE;
    this.valueCounts = [];
    for (let i = 0; i < n; i++) this.valueCounts.push(new Map());
    for (let i = 0; i < rows.length; i++) this.add(v, rows[i]!);
  }

  add(v: TableView, row: number): void {
    this.version++;
    this.rows.set(row, (this.rows.get(row) ?? 0) + 1);
    const p = this.cset.program;
    for (let i = 0, k = 0; i < p.length; i += OP_STRIDE, k++) {
      if (p[i] !== Op.LIMIT || p[i + 1]! < 0) continue;
      const value = v.attr(row, p[i + 1]!);
      if (value === 0) continue;
      const m = this.valueCounts[k]!;
      m.set(value, (m.get(value) ?? 0) + 1);
    }
  }
}
