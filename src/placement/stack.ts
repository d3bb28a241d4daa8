import { InvalidArgumentError } from '../api/errors.js';
import { CommitResult, tryCommit } from '../table/commit.js';
import { Header } from '../table/layout.js';
import type { TableView } from '../table/view.js';
import { Diagnosis } from './diagnose.js';
import { VerdictCache } from './verdict-cache.js';
import { PlacementQuery } from './query.js';
import { constraintsFit } from './feasibility/constraints-fit.js';
import { Candidates } from './selection/candidates.js';
import { ExactSelector } from './selection/exact.js';
import { Xorshift32 } from './selection/random.js';
import { selectSampled } from './selection/sampled.js';
import { ScanMemory } from './selection/shard-scan.js';
import { Policy } from './scoring/policy.js';
import { Reason, Status, reasonCode } from './status.js';

export const Selection = { EXACT: 0, SAMPLED: 1 } as const;
export type SelectionValue = (typeof Selection)[keyof typeof Selection];
export const SELECTION_NAMES = ['exact', 'sampled'] as const;

/**
 * Commit attempts per task. A conflict means another thread committed to the same row between our
 * read and our exchange; re-selecting sees its effect. Conflicts are rare (threads sample their
 * own shards), so hitting this cap means heavy contention: the task is reported unplaceable with
 * reason CONFLICTS and retried by the caller, rather than spinning here.
 */
export const MAX_COMMIT_ATTEMPTS = 16;

export interface PlacerOptions {
  selection: SelectionValue;
  /** Candidates per sampled decision (power-of-k choices). */
  sampleK: number;
  seed: number;
}

/**
 * The placement stack, built once per thread and reused for every task (nothing is allocated per
 * decision). Order of work, and why:
 *   1. select: exact (best-first branch and bound over shard summaries, selection/exact.ts) or
 *      sampled (k random rows of this thread's own shards, widening only when they hold nothing)
 *      — feasibility then scoring happen per candidate;
 *   2. commit the best candidate with the row's version word (optimistic, Omega-style);
 *   3. on a lost race, select again (the winner's commit is now visible) up to MAX_COMMIT_ATTEMPTS;
 *   4. when nothing fits, diagnose why (off the fast path). A request a remembered verdict covers,
 *      a repeat of the same question on an unchanged table included, is answered before step 1;
 *      so is, for exact binpack, a repeat of the last request placed, while its row still takes it
 *      (refill: committed there without a search).
 */
export class Placer {
  readonly view: TableView;
  private readonly opts: PlacerOptions;
  private readonly rng: Xorshift32;
  private readonly cands = new Candidates();
  private readonly scanMemory = new ScanMemory();
  readonly exact = new ExactSelector();
  readonly diagnosis = new Diagnosis();
  /** Unplaceable verdicts by request shape, valid until something is freed (see verdict-cache.ts). */
  readonly verdicts = new VerdictCache();
  /** Verdicts of unconstrained requests, which also answer constrained ones. */
  readonly genericVerdicts = new VerdictCache();
  /** Row this thread last committed to: offered first by sampled binpack. */
  private sticky = -1;
  /**
   * The last exact binpack placement, while it can answer the next request (see refill): its row,
   * the free/topology generation it was selected at, and its request.
   */
  private fillRow = -1;
  private fillGen = 0;
  private readonly fillQuery = new PlacementQuery();
  /** This thread owns the shards with shard % ownCount === ownIndex (see setOwnership). */
  private ownIndex = 0;
  private ownCount = 1;

  // Result of the last place() call.
  row = -1;
  status: number = Status.OK;
  reason: number = Reason.NONE;
  detail = 0;
  /** Cumulative over this placer's life. */
  conflicts = 0;
  retries = 0;
  /** Exact binpack placements committed to the last row without a search (refill). */
  refills = 0;

  constructor(view: TableView, opts: PlacerOptions) {
    this.view = view;
    this.opts = opts;
    this.rng = new Xorshift32(opts.seed);
  }

  /**
   * Makes this thread the owner of the shards with shard % count === index (worker `index` of
   * `count`). Sampled selection draws only from owned shards, widening to all only when they yield
   * nothing; exact selection breaks ties towards owned shards. Ownership is interleaved, not a
   * contiguous range, because rows are grouped into shards by machine class (node-table.ts) and a
   * class's shards are spread along the table: interleaving gives every thread a share of every
   * class, where a range could give one thread all the GPU nodes.
   */
  setOwnership(index: number, count: number): void {
    if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError(`ownership count must be a positive integer, got ${count}`);
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new InvalidArgumentError(`ownership index must be an integer in [0, ${count}), got ${index}`);
    }
    if (count !== this.ownCount) this.scanMemory.regions.clear();
    // Called at every round: what other threads committed in earlier rounds is not in what the
    // last search saw, so the next request searches again (see refill).
    this.fillRow = -1;
    this.ownIndex = index;
    this.ownCount = count;
    if (this.sticky >= 0 && !this.owns((this.sticky / this.view.shardSize) | 0)) this.sticky = -1;
  }

  private owns(shard: number): boolean {
    return shard % this.ownCount === this.ownIndex;
  }

  /**
   * Exact binpack, the same request as the last one placed: its row is still the best if it still
   * takes the task, so it is committed without a search. Binpack scores a row higher the fuller it
   * is: the commit raised that row's score and left every other row's as it was, so it beat them
   * all before and beats them now (and stays first among equals: ties go to its shard). That holds
   * while nothing was freed and the topology stood (freedGen: a freed row could now fit and score
   * higher), and for the same request (a job's later instance: its limit and distinct-hosts
   * constraints only get stricter, so they are re-checked on this row and can admit no new one).
   * Rows filled by anyone else are not seen: adoption (chargeRow) bumps the topology generation, and
   * each round starts with a search (setOwnership), so with several threads what the others commit
   * during the current round is what this thread's refills do not see, as any decision does not see
   * what others commit between its search and its commit. Returns false (nothing committed) when the
   * shortcut does not apply.
   */
  private refill(q: PlacementQuery, freedGen: number, portsOut: Int32Array, portsAt: number): boolean {
    const f = this.fillQuery;
    const row = this.fillRow;
    if (freedGen !== this.fillGen || !q.sameShape(f) || q.cset !== f.cset || q.job !== f.job) return false;
    const v = this.view;
    if (q.cset !== null && constraintsFit(v, row, q.cset, q.job) !== Reason.NONE) return false;
    const ver = Atomics.load(v.version, row);
    if ((ver & 1) !== 0) return false;
    if (tryCommit(v, row, ver, q.cpu, q.mem, q.disk, q.gpu, q.ports, portsOut, portsAt) !== CommitResult.OK) return false;
    this.exact.rowsRead = 0;
    this.exact.shardsRead = 0;
    this.refills++;
    this.row = row;
    this.status = Status.OK;
    this.reason = Reason.NONE;
    this.detail = 0;
    if (q.job !== null) q.job.add(v, row);
    return true;
  }

  /**
   * Places one task and commits it. Ports chosen are written to portsOut[portsAt..]. Returns the
   * Status; `row`, `reason` and `detail` describe the outcome.
   */
  place(q: PlacementQuery, portsOut: Int32Array, portsAt: number): number {
    const v = this.view;
    const c = this.cands;
    const rowLimit = v.rowLimit();
    // Verdicts hold while nothing is freed and the topology stands (a drain changes the reason's
    // numbers, a removal may make a verdict final). Both words only grow, so their sum moves when
    // either does. Read before selecting: a write during this call voids what we record below.
    const freedGen = Atomics.load(v.header, Header.FREED_GEN) + Atomics.load(v.header, Header.TOPOLOGY_GEN);
    let cache = this.genericVerdicts;
    let cached = cache.lookup(q, freedGen, true);
    if (cached < 0 && (q.cset !== null || q.job !== null)) {
      cache = this.verdicts;
      cached = cache.lookup(q, freedGen);
    }
    if (cached >= 0) {
      this.row = -1;
      this.status = cache.status[cached]!;
      this.reason = cache.reason[cached]!;
      this.detail = cache.detail[cached]!;
      return this.status;
    }
    if (this.fillRow >= 0 && this.refill(q, freedGen, portsOut, portsAt)) return Status.OK;
    this.fillRow = -1;
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      c.reset();
      if (this.opts.selection === Selection.EXACT) {
        // Ties go to the first shard in rank order: binpack's is where it last filled (the next
        // rows of that class are there), others' their first own shard.
        const stickyShard = (this.sticky / v.shardSize) | 0;
        const from = q.policy === Policy.BINPACK && this.sticky >= 0 && this.owns(stickyShard) ? stickyShard : this.ownIndex;
        this.exact.select(v, q, c, rowLimit, from, this.ownIndex, this.ownCount);
      } else {
        const sticky = q.policy === Policy.BINPACK ? this.sticky : -1;
        this.scanMemory.gen = freedGen;
        selectSampled(v, q, c, this.rng, this.opts.sampleK, rowLimit, this.ownIndex, this.ownCount, sticky, this.scanMemory);
      }
      if (c.bestRow < 0) break;
      let r = tryCommit(v, c.bestRow, c.bestVersion, q.cpu, q.mem, q.disk, q.gpu, q.ports, portsOut, portsAt);
      // Binpack scores a row higher the fuller it is, so a row that just took another thread's task
      // only scored up: if it still takes this one, commit again at its new version instead of
      // selecting afresh (for exact selection, a full re-selection, several microseconds). A row
      // that no longer fits (NO_FIT), or is being written right now (odd version), is left to the
      // re-selection below, which also outlasts the write.
      while (r === CommitResult.CONFLICT && q.policy === Policy.BINPACK && attempt + 1 < MAX_COMMIT_ATTEMPTS) {
        const ver = Atomics.load(v.version, c.bestRow);
        if ((ver & 1) !== 0) break;
        this.conflicts++;
        this.retries++;
        attempt++;
        r = tryCommit(v, c.bestRow, ver, q.cpu, q.mem, q.disk, q.gpu, q.ports, portsOut, portsAt);
      }
      if (r === CommitResult.OK) {
        this.row = c.bestRow;
        this.status = Status.OK;
        this.reason = Reason.NONE;
        this.detail = 0;
        this.sticky = c.bestRow;
        if (q.job !== null) q.job.add(v, c.bestRow);
        // A request with no cpu and no mem does not raise the row's score: it then stays first among
        // equals only if its shard ranks first in a search, which holds for an owned shard.
        if (this.opts.selection === Selection.EXACT && q.policy === Policy.BINPACK && (q.cpu > 0 || q.mem > 0 || this.owns((c.bestRow / v.shardSize) | 0))) {
          this.fillRow = c.bestRow;
          this.fillGen = freedGen;
          this.fillQuery.set(q.cpu, q.mem, q.disk, q.gpu, q.ports, q.policy, q.cset, q.job);
        }
        return Status.OK;
      }
      this.conflicts++;
      this.retries++;
    }
    this.row = -1;
    this.fillRow = -1;
    if (c.bestRow >= 0) {
      // Still finding rows but losing every race: tell the caller to retry later.
      this.status = Status.UNPLACEABLE;
      this.reason = Reason.CONFLICTS;
      this.detail = MAX_COMMIT_ATTEMPTS;
      return this.status;
    }
    const d = this.diagnosis;
    // No separate "same question as last time" check: a repeat on an unchanged table is already
    // answered by the verdict cache above (it dominates itself), so reaching here means it changed.
    d.run(v, q, rowLimit);
    this.status = d.status;
    this.reason = d.reason;
    this.detail = d.detail;
    // A task that fits a row right now but lost it (a race, or a writer holding it) is not
    // unplaceable: that verdict would answer every later request of the shape until something is
    // freed, which a filling cluster may never do. Only verdicts about the table's contents are kept.
    if (reasonCode(d.reason) !== Reason.CONFLICTS) (q.cset === null && q.job === null ? this.genericVerdicts : this.verdicts).insert(q, freedGen, d.status, d.reason, d.detail);
    return this.status;
  }
}
