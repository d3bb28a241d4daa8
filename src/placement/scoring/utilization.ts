import { loadUnits, recip, shareUnits } from '../../table/summary.js';
import { UTIL_ONE } from '../../table/layout.js';
import type { TableView } from '../../table/view.js';

/** Fraction of a row's cpu that would be in use after adding `cpu` (1 when the row has none). */
export function cpuAfter(v: TableView, row: number, cpu: number): number {
  const cap = v.capCpu[row]!;
  return cap > 0 ? (v.usedCpu[row]! + cpu) / cap : 1;
}

/** Fraction of a row's mem that would be in use after adding `mem`. */
export function memAfter(v: TableView, row: number, mem: number): number {
  const cap = v.capMem[row]!;
  return cap > 0 ? (v.usedMem[row]! + mem) / cap : 1;
}

/** Converts load + share units (0..4 * UTIL_ONE) to a mean utilisation. */
const HALF_UNIT = 1 / (2 * UTIL_ONE);

/**
 * Mean of cpu and mem utilisation after placement, as binpack and spread score it:
 * (load + share) / 2 in UTIL_ONE units, where load is the row's (table/summary.ts: loadUnits) and
 * share the request's (shareUnits). Both are integers and the result is exact, which is what lets
 * shard bounds built from the same integers equal a shard's best score (selection/bounds.ts).
 * Differs from cpuAfter + memAfter by less than 2^-29.
 */
export function meanAfterUnits(load: number, share: number): number {
  return (load + share) * HALF_UNIT;
}

/** meanAfterUnits for a row of the table. */
export function meanAfter(v: TableView, row: number, cpu: number, mem: number): number {
  const cc = v.capCpu[row]!;
  const cm = v.capMem[row]!;
  const rc = recip(cc);
  const rm = recip(cm);
  return meanAfterUnits(loadUnits(v.usedCpu[row]!, cc, rc, v.usedMem[row]!, cm, rm), shareUnits(cpu, rc, mem, rm));
}
