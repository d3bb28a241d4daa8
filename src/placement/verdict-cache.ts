import { RequestShapes } from './request-shapes.js';
import type { PlacementQuery } from './query.js';

/**
 * Unplaceable verdicts, remembered until resources are freed.
 *
 * When a cluster is full, the tail of a workload is tasks that fit nowhere, and proving that costs
 * a pass over the table each. But free resources only shrink between two releases, so a task that
 * asks for at least as much as one already found unplaceable (every dimension, same constraint set)
 * is unplaceable too, until something is freed. The table's FREED_GEN word moves on every release,
 * join or reactivation, TOPOLOGY_GEN on every node change; a verdict is valid only at the
 * generation (their sum) it was made at. Job-scoped requests (limit, distinct hosts) depend on the
 * job's other instances too: their verdicts also name the job and its placement version, so the
 * next instance of a job that fits nowhere is answered at once until the job places one.
 * A verdict made without constraints also covers any constrained request at least as large:
 * constraints only remove nodes. The placer keeps those in a ring of their own (`generic`), so the
 * per-job verdicts of a full cluster cannot push them out.
 * A small ring (workloads have few distinct shapes at a time); lookups are a linear scan of ints.
 */
export const VERDICT_CACHE_SIZE = 32;

export class VerdictCache {
  private readonly shapes = new RequestShapes(VERDICT_CACHE_SIZE);
  readonly status = new Int32Array(VERDICT_CACHE_SIZE);
  readonly reason = new Int32Array(VERDICT_CACHE_SIZE);
  readonly detail = new Int32Array(VERDICT_CACHE_SIZE);
  private next = 0;
  /** Generation of the newest verdict: generations only grow, so if it is not `gen` none is valid. */
  private newestGen = -1;
  hits = 0;

  /**
   * Index of a verdict that covers this request at generation `gen`, or -1. With `anyScope`, the
   * ring holds only unconstrained verdicts and they cover any constraint set and job.
   */
  lookup(q: PlacementQuery, gen: number, anyScope = false): number {
    if (this.newestGen !== gen) return -1;
    for (let i = 0; i < VERDICT_CACHE_SIZE; i++) {
      if (this.shapes.covers(i, q, gen, anyScope)) {
        this.hits++;
        return i;
      }
    }
    return -1;
  }

  insert(q: PlacementQuery, gen: number, status: number, reason: number, detail: number): void {
    const i = this.next;
    this.next = i + 1 === VERDICT_CACHE_SIZE ? 0 : i + 1;
    this.shapes.write(i, q, gen);
    this.newestGen = gen;
    this.status[i] = status;
    this.reason[i] = reason;
    this.detail[i] = detail;
  }
}
