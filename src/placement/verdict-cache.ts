import { SHARED_VERDICTS, Verdict } from '../table/layout.js';
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

/**
 * Unconstrained verdicts shared by every thread placing on one table, in the table's verdict ring
 * (table/layout.ts: Verdict). Each thread keeps its own VerdictCache in front of it; this second
 * level saves a thread from proving again, with a scan of every shard and a diagnosis pass, what
 * another thread has just proved. Same rule as the per-thread ring: a verdict holds at the
 * generation it was made at, for any request at least as large.
 * An entry is a seqlock: a writer takes it by moving SEQ from even to odd (a writer that finds it
 * odd or loses the exchange just skips: the ring is a cache), writes, and publishes SEQ + 2; a
 * reader that sees SEQ odd, or changed across its reads, ignores the entry.
 */
export class SharedVerdicts {
  private readonly a: Int32Array;
  /** The verdict the last successful lookup() found. */
  status = 0;
  reason = 0;
  detail = 0;
  hits = 0;

  constructor(ring: Int32Array) {
    this.a = ring;
  }

  lookup(q: PlacementQuery, gen: number): boolean {
    const a = this.a;
    if (Atomics.load(a, Verdict.NEWEST_GEN) !== gen) return false;
    for (let i = 0, e = Verdict.ENTRIES; i < SHARED_VERDICTS; i++, e += Verdict.STRIDE) {
      const seq = Atomics.load(a, e + Verdict.SEQ);
      if ((seq & 1) !== 0 || seq === 0) continue;
      if (
        a[e + Verdict.GEN] !== gen ||
        q.cpu < a[e + Verdict.CPU]! ||
        q.mem < a[e + Verdict.MEM]! ||
        q.disk < a[e + Verdict.DISK]! ||
        q.gpu < a[e + Verdict.GPU]! ||
        q.ports < a[e + Verdict.PORTS]!
      ) {
        continue;
      }
      const status = a[e + Verdict.STATUS]!;
      const reason = a[e + Verdict.REASON]!;
      const detail = a[e + Verdict.DETAIL]!;
      // Atomics are sequentially consistent, so the plain reads above are ordered before this one.
      if (Atomics.load(a, e + Verdict.SEQ) !== seq) continue;
      this.status = status;
      this.reason = reason;
      this.detail = detail;
      this.hits++;
      return true;
    }
    return false;
  }

  insert(q: PlacementQuery, gen: number, status: number, reason: number, detail: number): void {
    const a = this.a;
    const i = (Atomics.add(a, Verdict.NEXT, 1) >>> 0) % SHARED_VERDICTS;
    const e = Verdict.ENTRIES + i * Verdict.STRIDE;
    const seq = Atomics.load(a, e + Verdict.SEQ);
    if ((seq & 1) !== 0 || Atomics.compareExchange(a, e + Verdict.SEQ, seq, (seq + 1) | 0) !== seq) return;
    a[e + Verdict.GEN] = gen;
    a[e + Verdict.CPU] = q.cpu;
    a[e + Verdict.MEM] = q.mem;
    a[e + Verdict.DISK] = q.disk;
    a[e + Verdict.GPU] = q.gpu;
    a[e + Verdict.PORTS] = q.ports;
    a[e + Verdict.STATUS] = status;
    a[e + Verdict.REASON] = reason;
    a[e + Verdict.DETAIL] = detail;
    // Never back to 0 (the never-written mark) when it wraps.
    const next = (seq + 2) | 0;
    Atomics.store(a, e + Verdict.SEQ, next === 0 ? 2 : next);
    // Generations only grow: a writer at an older one must not hide a newer entry.
    for (;;) {
      const cur = Atomics.load(a, Verdict.NEWEST_GEN);
      if (cur - gen >= 0 || Atomics.compareExchange(a, Verdict.NEWEST_GEN, cur, gen) === cur) break;
    }
  }
}
