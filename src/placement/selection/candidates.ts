import { NodeState } from '../../table/layout.js';
import type { TableView } from '../../table/view.js';
import { constraintsFit } from '../feasibility/constraints-fit.js';
import { portsFit } from '../feasibility/ports-fit.js';
import { resourcesFit } from '../feasibility/resources-fit.js';
import type { PlacementQuery } from '../query.js';
import { score } from '../scoring/index.js';
import { Reason } from '../status.js';

/**
 * The running best of a selection: candidates are offered one at a time, feasibility runs in the
 * stack's order (cheapest and most selective first: node up, resources, ports, then constraints,
 * which may walk a program), and the feasible ones are scored. Reused across tasks via reset().
 */
export class Candidates {
  bestRow = -1;
  bestVersion = 0;
  bestScore = -Infinity;
  /** Feasible rows offered (offer), or rows that were the best when offered (exact selection's consider). */
  found = 0;
  /** Rows rejected on resources alone, so a selection can tell a stale shard summary. */
  resourceMisses = 0;
  /**
   * Rows passed over because a writer held them (odd version): their "no" is not a proof, so a
   * read that met one must not be remembered as a miss (shard-misses.ts, region-misses.ts).
   */
  busy = 0;

  reset(): void {
    this.bestRow = -1;
    this.bestVersion = 0;
    this.bestScore = -Infinity;
    this.found = 0;
    this.resourceMisses = 0;
    this.busy = 0;
  }

  /** Offers a row; returns true when it is feasible (and was scored). */
  offer(v: TableView, q: PlacementQuery, row: number): boolean {
    // Resources first: in a crowded table most offers fail here, and a random row costs a cache miss
    // per column read, so a rejected row reads only what rejects it. The version is read after the
    // data and may be newer than what was read; the commit re-checks the fit under the row lock
    // (tryCommit), so the worst a race costs is a stale score, never an over-commit.
    if (resourcesFit(v, row, q.cpu, q.mem, q.disk, q.gpu) !== Reason.NONE || !portsFit(v, row, q.ports)) {
      if (v.state[row] === NodeState.UP) this.resourceMisses++;
      return false;
    }
    const ver = Atomics.load(v.version, row);
    if ((ver & 1) !== 0) {
      this.busy++;
      return false;
    }
    if (v.state[row] !== NodeState.UP) return false;
    if (q.cset !== null && constraintsFit(v, row, q.cset, q.job) !== Reason.NONE) return false;
    this.consider(row, ver, score(q.policy, v, row, q.cpu, q.mem, q.gpu));
    return true;
  }

  /** Records a feasible row with its score (first best wins ties: scan order is the tie-break). */
  consider(row: number, ver: number, s: number): void {
    this.found++;
    if (s > this.bestScore) {
      this.bestScore = s;
      this.bestRow = row;
      this.bestVersion = ver;
    }
  }
}
