import { Header, NodeState } from '../../table/layout.js';
import type { TableView } from '../../table/view.js';
import { type CompiledConstraints, OP_STRIDE, Op } from '../constraints/compiled.js';

/** Shard states in ShardMatches: not looked at yet, some row matches, no row matches. */
const UNKNOWN = 0;
const SOME = 1;
const NONE = -1;

interface SetMatches {
  generation: number;
  state: Int8Array;
}

/**
 * Per thread: which shards hold no UP row that passes a constraint set's attribute tests (=, !=,
 * regex, and the attribute a limit counts by). Bounds ignore constraints, so without this a task
 * pinned to some machines would read, best bound first, every shard of the machines it may not
 * use. Rows are grouped into shards by machine class, so constraints on class-like attributes
 * (instance type, GPU model) rule out whole shards.
 * Attributes and UP-ness change only with the topology (TOPOLOGY_GEN: joins, removals, state
 * changes), which clears everything; a shard is looked at only when a selection is about to read
 * it anyway, with a pass over attributes alone, so a topology change costs no more than that.
 * Allocates only for a constraint set it has not seen (or a recompiled one), and after a topology
 * change.
 */
export class ShardMatches {
  private topology = -1;
  private readonly sets = new Map<number, SetMatches>();

  /** False when no UP row of the shard passes the set's attribute tests (so the task fits none). */
  any(v: TableView, cset: CompiledConstraints, shard: number, rowLimit: number): boolean {
    const topology = Atomics.load(v.header, Header.TOPOLOGY_GEN);
    if (topology !== this.topology) {
      this.topology = topology;
      this.sets.clear();
    }
    let m = this.sets.get(cset.id);
    if (m === undefined || m.generation !== cset.generation || m.state.length <= shard) {
      m = { generation: cset.generation, state: new Int8Array(Math.max(shard + 1, v.shardCount(rowLimit))) };
      this.sets.set(cset.id, m);
    }
    let st = m.state[shard]!;
    if (st === UNKNOWN) {
      st = anyRowMatches(v, cset, shard, rowLimit) ? SOME : NONE;
      m.state[shard] = st;
    }
    return st === SOME;
  }
}

/** True when the set has a test that depends on attributes alone (anything but distinct_hosts). */
export function hasAttributeTests(cset: CompiledConstraints): boolean {
  const p = cset.program;
  for (let i = 0; i < p.length; i += OP_STRIDE) if (p[i] !== Op.DISTINCT_HOSTS) return true;
  return false;
}

function anyRowMatches(v: TableView, cset: CompiledConstraints, shard: number, rowLimit: number): boolean {
  const lo = shard * v.shardSize;
  const hi = lo + v.shardSize < rowLimit ? lo + v.shardSize : rowLimit;
  for (let row = lo; row < hi; row++) if (v.state[row] === NodeState.UP && attributesFit(v, row, cset)) return true;
  return false;
}

/** The attribute tests of constraintsFit (feasibility/constraints-fit.ts), without the job-scoped counts. */
function attributesFit(v: TableView, row: number, cset: CompiledConstraints): boolean {
  const p = cset.program;
  const base = row * v.maxAttrKeys;
  for (let i = 0; i < p.length; i += OP_STRIDE) {
    const op = p[i]!;
    if (op === Op.DISTINCT_HOSTS) continue;
    const slot = p[i + 1]!;
    const value = slot >= 0 ? v.attrs[base + slot]! : 0;
    const arg = p[i + 2]!;
    if (op === Op.EQ && value !== arg) return false;
    if (op === Op.NE && value === arg) return false;
    if (op === Op.IN_SET && (value === 0 || cset.matchSets[arg]![value] !== 1)) return false;
    // A node without the attribute cannot be counted against the limit, so it is not eligible.
    if (op === Op.LIMIT && value === 0) return false;
  }
  return true;
}
