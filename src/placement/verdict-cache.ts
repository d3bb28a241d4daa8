import type { JobPlacementState } from './constraints/job-state.js';
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
  private readonly cpu = new Int32Array(VERDICT_CACHE_SIZE);
  private readonly mem = new Int32Array(VERDICT_CACHE_SIZE);
  private readonly disk = new Int32Array(VERDICT_CACHE_SIZE);
  private readonly gpu = new Int32Array(VERDICT_CACHE_SIZE);
  private readonly ports = new Int32Array(VERDICT_CACHE_SIZE);
  private readonly cset = new Int32Array(VERDICT_CACHE_SIZE);
  private readonly gen = new Int32Array(VERDICT_CACHE_SIZE);
  private readonly live = new Uint8Array(VERDICT_CACHE_SIZE);
  private readonly job: (JobPlacementState | null)[] = new Array<JobPlacementState | null>(VERDICT_CACHE_SIZE).fill(null);
  private readonly jobVersion = new Int32Array(VERDICT_CACHE_SIZE);
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
    const job = q.job;
    const jobVersion = job === null ? 0 : job.version;
    const cs = q.cset === null ? -1 : q.cset.id;
    for (let i = 0; i < VERDICT_CACHE_SIZE; i++) {
      if (
        this.live[i] === 1 &&
        this.gen[i] === gen &&
        (anyScope || (this.cset[i] === cs && this.job[i] === job && this.jobVersion[i] === jobVersion)) &&
        q.cpu >= this.cpu[i]! &&
        q.mem >= this.mem[i]! &&
        q.disk >= this.disk[i]! &&
        q.gpu >= this.gpu[i]! &&
        q.ports >= this.ports[i]!
      ) {
        this.hits++;
        return i;
      }
    }
    return -1;
  }

  insert(q: PlacementQuery, gen: number, status: number, reason: number, detail: number): void {
    const i = this.next;
    this.next = i + 1 === VERDICT_CACHE_SIZE ? 0 : i + 1;
    this.cpu[i] = q.cpu;
    this.mem[i] = q.mem;
    this.disk[i] = q.disk;
    this.gpu[i] = q.gpu;
    this.ports[i] = q.ports;
    this.cset[i] = q.cset === null ? -1 : q.cset.id;
    this.job[i] = q.job;
    this.jobVersion[i] = q.job === null ? 0 : q.job.version;
    this.gen[i] = gen;
    this.live[i] = 1;
    this.newestGen = gen;
    this.status[i] = status;
    this.reason[i] = reason;
    this.detail[i] = detail;
  }
}
