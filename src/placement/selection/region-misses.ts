import type { PlacementQuery } from '../query.js';
import { VerdictCache } from '../verdict-cache.js';

/**
 * Per thread, for each owner's set of shards (Placer.setOwnership): request shapes that a full scan
 * of that set found no row for. Valid until something is freed or the topology changes, the same
 * generation the verdict cache keys on: in between, free amounts only shrink, so a request at least
 * as large as a recorded one fits none of those rows either.
 * Why: with several threads, a shape that no longer fits this thread's shards but still fits
 * another's probed and scanned its own set again on every task of that shape before moving on.
 * Now it moves on at once. Unconstrained misses cover any constraint set (constraints only remove
 * rows); constrained ones only their own set and job state, as in the placer's verdict caches.
 */
export class RegionMisses {
  private readonly generic: VerdictCache[] = [];
  private readonly scoped: VerdictCache[] = [];

  /** True when a request at most as large as `q` was found to fit no row of `owner`'s shards at `gen`. */
  covers(owner: number, q: PlacementQuery, gen: number): boolean {
    const g = this.generic[owner];
    if (g !== undefined && g.lookup(q, gen, true) >= 0) return true;
    const s = q.cset === null ? undefined : this.scoped[owner];
    return s !== undefined && s.lookup(q, gen) >= 0;
  }

  /** Records that a full scan of `owner`'s shards found no row for `q` at `gen`. */
  record(owner: number, q: PlacementQuery, gen: number): void {
    const caches = q.cset === null && q.job === null ? this.generic : this.scoped;
    let cache = caches[owner];
    if (cache === undefined) {
      cache = new VerdictCache();
      caches[owner] = cache;
    }
    cache.insert(q, gen, 0, 0, 0);
  }

  /** Forgets everything: owner indexes now name other sets of shards. */
  clear(): void {
    this.generic.length = 0;
    this.scoped.length = 0;
  }
}
