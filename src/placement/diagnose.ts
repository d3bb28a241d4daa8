import { Header, NodeState } from '../table/layout.js';
import type { TableView } from '../table/view.js';
import { constraintsFit } from './feasibility/constraints-fit.js';
import { type CompiledConstraints, OP_STRIDE, Op } from './constraints/compiled.js';
import type { JobPlacementState } from './constraints/job-state.js';
import type { PlacementQuery } from './query.js';
import { REASON_SLOTS, Reason, Status, reasonWord } from './status.js';

/**
 * Why a task fits nowhere. Called only after selection found nothing, so it may cost a scan; it
 * tries cheap proofs first:
 * 1. a request above the largest capacity any node has is final ("no node has 64 gpus");
 * 2. otherwise a full pass counting, per row, the first filter that said no (Nomad's
 *    "constraint filtered N nodes"), and whether any up row could hold the task if it were empty
 *    (which decides transient versus final: per-dimension summaries cannot, since a node with
 *    enough cpu and another with enough gpus do not make one node with both).
 *    Only up rows vote for the reason: rows draining or down say nothing about why the up ones
 *    refused, so they are the reason only when no row is up, and otherwise ride along in the
 *    reason word as context (status.ts reasonWord).
 * The placer caches verdicts per request shape until resources are freed, so a full cluster
 * pays this pass once per shape, not once per task.
 * Results land in the fields below (no allocation); the allocator turns them into text once.
 */
export class Diagnosis {
  status: number = Status.UNPLACEABLE;
  /** A reason word (status.ts): the Reason, plus the rows draining or down as context. */
  reason: number = Reason.NONE;
  /**
   * For resource reasons: the largest capacity (final) or largest free amount (transient) seen for
   * that dimension on an eligible up row; for NODE_NOT_UP the rows draining or down; for LIMIT the
   * index of the limit constraint that blocked most rows; otherwise the rows the reason filtered.
   */
  detail = 0;
  readonly counts = new Int32Array(REASON_SLOTS);
  private readonly maxFree = new Int32Array(5);
  private readonly maxCap = new Int32Array(5);
  /** Rows refused by each limit constraint, by its index in the set. */
  private readonly limitCounts = new Int32Array(REASON_SLOTS - Reason.CONSTRAINT_BASE);

  run(v: TableView, q: PlacementQuery, rowLimit: number): void {
    if (this.byCapacity(v, q)) return;
    this.byScan(v, q, rowLimit);
  }

  private set(status: number, reason: number, detail: number): true {
    this.status = status;
    this.reason = reason;
    this.detail = detail;
    return true;
  }

  private byCapacity(v: TableView, q: PlacementQuery): boolean {
    const h = v.header;
    if (v.rowLimit() === 0) return this.set(Status.UNPLACEABLE_FINAL, Reason.NO_NODES, 0);
    if (q.cpu > h[Header.MAX_CAP_CPU]!) return this.set(Status.UNPLACEABLE_FINAL, Reason.CPU, h[Header.MAX_CAP_CPU]!);
    if (q.mem > h[Header.MAX_CAP_MEM]!) return this.set(Status.UNPLACEABLE_FINAL, Reason.MEM, h[Header.MAX_CAP_MEM]!);
    if (q.disk > h[Header.MAX_CAP_DISK]!) return this.set(Status.UNPLACEABLE_FINAL, Reason.DISK, h[Header.MAX_CAP_DISK]!);
    if (q.gpu > h[Header.MAX_CAP_GPU]!) return this.set(Status.UNPLACEABLE_FINAL, Reason.GPU, h[Header.MAX_CAP_GPU]!);
    if (q.ports > h[Header.MAX_CAP_PORTS]!) return this.set(Status.UNPLACEABLE_FINAL, Reason.PORTS, h[Header.MAX_CAP_PORTS]!);
    return false;
  }

  private byScan(v: TableView, q: PlacementQuery, rowLimit: number): void {
    const counts = this.counts;
    counts.fill(0);
    let up = 0;
    let couldEverFit = 0;
    const maxFree = this.maxFree;
    maxFree.fill(0);
    const maxCap = this.maxCap;
    maxCap.fill(0);
    const limitCounts = this.limitCounts;
    limitCounts.fill(0);
    for (let row = 0; row < rowLimit; row++) {
      const st = v.state[row];
      if (st === NodeState.EMPTY) continue;
      if (st !== NodeState.UP) {
        counts[Reason.NODE_NOT_UP]!++;
        continue;
      }
      up++;
      const staticReason = q.cset === null ? Reason.NONE : staticConstraintsFit(v, row, q.cset);
      const fc = v.capCpu[row]! - v.usedCpu[row]!;
      const fm = v.capMem[row]! - v.usedMem[row]!;
      const fd = v.capDisk[row]! - v.usedDisk[row]!;
      const fg = v.capGpu[row]! - v.usedGpu[row]!;
      const fp = v.portsFree[row]!;
      if (staticReason !== Reason.NONE) {
        counts[staticReason]!++;
        continue;
      }
      if (v.capCpu[row]! > maxCap[0]!) maxCap[0] = v.capCpu[row]!;
      if (v.capMem[row]! > maxCap[1]!) maxCap[1] = v.capMem[row]!;
      if (v.capDisk[row]! > maxCap[2]!) maxCap[2] = v.capDisk[row]!;
      if (v.capGpu[row]! > maxCap[3]!) maxCap[3] = v.capGpu[row]!;
      if (v.portCap[row]! > maxCap[4]!) maxCap[4] = v.portCap[row]!;
      if (
        v.capCpu[row]! >= q.cpu &&
        v.capMem[row]! >= q.mem &&
        v.capDisk[row]! >= q.disk &&
        v.capGpu[row]! >= q.gpu &&
        v.portCap[row]! >= q.ports
      ) {
        couldEverFit++;
      }
      let r: number = Reason.NONE;
      if (fc < q.cpu) r = Reason.CPU;
      else if (fm < q.mem) r = Reason.MEM;
      else if (fd < q.disk) r = Reason.DISK;
      else if (fg < q.gpu) r = Reason.GPU;
      else if (fp < q.ports) r = Reason.PORTS;
      else if (q.cset !== null) r = constraintsFit(v, row, q.cset, q.job);
      if (r === Reason.NONE) r = Reason.CONFLICTS; // fits now: it lost races while we looked
      else if (r === Reason.LIMIT) limitCounts[blockingLimit(v, row, q.cset!, q.job!)]!++;
      counts[r]!++;
      if (fc > maxFree[0]!) maxFree[0] = fc;
      if (fm > maxFree[1]!) maxFree[1] = fm;
      if (fd > maxFree[2]!) maxFree[2] = fd;
      if (fg > maxFree[3]!) maxFree[3] = fg;
      if (fp > maxFree[4]!) maxFree[4] = fp;
    }
    // Rows draining or down: context for the reason (reasonWord carries it), never the reason while a row is up.
    const notUp = counts[Reason.NODE_NOT_UP]!;
    if (up === 0) {
      if (notUp > 0) this.set(Status.UNPLACEABLE, Reason.NODE_NOT_UP, notUp);
      else this.set(Status.UNPLACEABLE, Reason.NO_NODES, 0);
      return;
    }
    // A row the task fits right now (busy with a writer, or taken and freed while we looked) makes
    // the outcome a lost race, whatever most rows say: the task is placeable, and the caller should
    // retry it rather than be told the cluster is short of something.
    if (counts[Reason.CONFLICTS]! > 0) {
      this.set(Status.UNPLACEABLE, reasonWord(Reason.CONFLICTS, notUp), 0);
      return;
    }
    // The dominant reason among up rows only (ties go to the earlier filter).
    let best = Reason.NONE as number;
    for (let r = Reason.NODE_NOT_UP + 1; r < REASON_SLOTS; r++) if (counts[r]! > (best === Reason.NONE ? 0 : counts[best]!)) best = r;
    // The job's own instances (limit, distinct hosts) and free resources change; capacity and attributes do not.
    const final = couldEverFit === 0;
    // A final verdict says what no up row has (capacity); a transient one what is short now (free).
    const amounts = final ? maxCap : maxFree;
    let detail: number;
    if (best >= Reason.CPU && best <= Reason.PORTS) detail = amounts[best - Reason.CPU]!;
    else if (best === Reason.LIMIT) detail = mostBlocking(limitCounts);
    else detail = counts[best]!;
    this.set(final ? Status.UNPLACEABLE_FINAL : Status.UNPLACEABLE, reasonWord(best, notUp), detail);
  }
}

/** Index of the limit constraint that refused a row (constraintsFit said LIMIT for it). */
function blockingLimit(v: TableView, row: number, cset: CompiledConstraints, job: JobPlacementState): number {
  const p = cset.program;
  const base = row * v.maxAttrKeys;
  for (let i = 0, k = 0; i < p.length; i += OP_STRIDE, k++) {
    if (p[i] !== Op.LIMIT) continue;
    const slot = p[i + 1]!;
    const value = slot >= 0 ? v.attrs[base + slot]! : 0;
    if (value !== 0 && (job.valueCounts[k]!.get(value) ?? 0) >= p[i + 2]!) return k;
  }
  return 0;
}

function mostBlocking(byIndex: Int32Array): number {
  let best = 0;
  for (let k = 1; k < byIndex.length; k++) if (byIndex[k]! > byIndex[best]!) best = k;
  return best;
}

/** Attribute-only constraints (=, !=, ~, and presence of a limited attribute): what never changes for a row. */
function staticConstraintsFit(v: TableView, row: number, cset: CompiledConstraints): number {
  const p = cset.program;
  const base = row * v.maxAttrKeys;
  for (let i = 0, k = 0; i < p.length; i += OP_STRIDE, k++) {
    const op = p[i]!;
    if (op === Op.DISTINCT_HOSTS) continue;
    const slot = p[i + 1]!;
    const value = slot >= 0 ? v.attrs[base + slot]! : 0;
    const arg = p[i + 2]!;
    if (op === Op.EQ && value !== arg) return Reason.CONSTRAINT_BASE + k;
    if (op === Op.NE && value === arg) return Reason.CONSTRAINT_BASE + k;
    if (op === Op.IN_SET && (value === 0 || cset.matchSets[arg]![value] !== 1)) return Reason.CONSTRAINT_BASE + k;
    if (op === Op.LIMIT && value === 0) return Reason.CONSTRAINT_BASE + k;
  }
  return Reason.NONE;
}
