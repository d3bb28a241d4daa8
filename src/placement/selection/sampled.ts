import { NodeState } from '../../table/layout.js';
import type { TableView } from '../../table/view.js';
import type { PlacementQuery } from '../query.js';
import type { Candidates } from './candidates.js';
import type { Xorshift32 } from './random.js';
import { type ScanMemory, scanShards } from './shard-scan.js';

/**
 * Probes per wanted candidate before falling back to a scan. Random probes are cheap while most
 * rows fit; once the cluster is nearly full most probes miss, and the summary-pruned scan finds
 * the few rows that still fit faster than more dice would.
 */
export const PROBES_PER_CANDIDATE = 4;

/**
 * Draws per probe: a draw that lands on an EMPTY row (the unused tail of a machine class's shard,
 * or a removed node's row) or past the last row does not count as a probe, but the draws are
 * capped so a table of mostly empty rows cannot stall the loop.
 */
const DRAWS_PER_PROBE = 4;

/**
 * Rows probed per draw: the drawn row and its next neighbours. The table is columnar, so a random
 * row costs a cache miss in every column it reads (version, state, used and capacity of each
 * resource); its neighbours share those cache lines. Runs of 4 cut the misses of a decision about
 * fourfold, which is what bounds sampled placement on a large table, and most of all when two
 * threads share the cache. The run's start is uniform, so choices stay random across the table.
 */
export const RUN = 4;

/**
 * Sampled: the best of k random feasible rows (power-of-k choices). k = 2 already avoids the worst
 * choice with high probability; larger k trades time for packing quality. Rows are drawn from the
 * caller's own shards (shard % ownCount === ownIndex: pick a random owned shard, then a random row
 * in it, as one draw) so parallel threads rarely touch the same row; when they yield nothing, the
 * pruned scan covers the own shards, then widens to the whole table.
 * `mem` is the caller's, reused (no allocation per task); it remembers which owners' shards a scan
 * found nothing in, at table generation mem.gen: those are not probed or scanned again for a
 * request at least as large until something is freed.
 * `sticky` (>= 0) is offered first: for binpack it is the row this thread filled last, which keeps
 * packing tight and the row in cache.
 */
export function selectSampled(
  v: TableView,
  q: PlacementQuery,
  c: Candidates,
  rng: Xorshift32,
  k: number,
  rowLimit: number,
  ownIndex: number,
  ownCount: number,
  sticky: number,
  mem: ScanMemory,
): void {
  const regions = mem.regions;
  const gen = mem.gen;
  if (sticky >= 0 && sticky < rowLimit) c.offer(v, q, sticky);
  const size = v.shardSize;
  const all = v.shardCount(rowLimit);
  // Own shards are ownIndex, ownIndex + ownCount, ... below `all`; the draws cover their rows.
  const owned = ownIndex < all ? (((all - ownIndex - 1) / ownCount) | 0) + 1 : 0;
  const span = ownCount === 1 ? rowLimit : owned * size;
  const ownMissed = regions.covers(ownIndex, q, gen);
  if (span > 0 && !ownMissed) {
    const state = v.state;
    const maxProbes = k * PROBES_PER_CANDIDATE;
    const maxDraws = maxProbes * DRAWS_PER_PROBE;
    // One draw picks the shard and the row in it; a power-of-two shard size splits it with a shift.
    const shift = (size & (size - 1)) === 0 ? 31 - Math.clz32(size) : -1;
    for (let probes = 0, draws = 0; probes < maxProbes && draws < maxDraws && c.found < k; draws++) {
      const r = rng.below(span);
      let row: number;
      if (ownCount === 1) row = r;
      else if (shift >= 0) row = (ownIndex + (r >>> shift) * ownCount) * size + (r & (size - 1));
      else {
        const j = (r / size) | 0;
        row = (ownIndex + j * ownCount) * size + (r - j * size);
      }
      if (row >= rowLimit) continue;
      // A short run of neighbours from the drawn row, wrapping inside its shard (one machine class).
      const base = row - (row % size);
      const end = base + size < rowLimit ? base + size : rowLimit;
      for (let j = 0; j < RUN && probes < maxProbes && c.found < k; j++) {
        if (state[row] !== NodeState.EMPTY) {
          probes++;
          c.offer(v, q, row);
        }
        if (++row >= end) row = base;
      }
    }
  }
  if (c.found > 0) return;
  // Nothing from the dice: scan own shards from a random start, then everyone's.
  if (owned > 0 && !ownMissed) {
    const busy = c.busy;
    scanShards(v, q, c, rowLimit, ownIndex, ownCount, owned, rng.below(owned), rng.below(size), k, mem);
    if (c.found === 0 && c.busy === busy) regions.record(ownIndex, q, gen);
  }
  if (c.found > 0 || ownCount === 1 || all === 0) return;
  // Then the other threads' shards, one owner's set at a time from a random one: our own were just
  // scanned in full, and reading them again is what made two threads slower than one when full.
  const first = rng.below(ownCount);
  for (let n = 0; n < ownCount && c.found === 0; n++) {
    let j = first + n;
    if (j >= ownCount) j -= ownCount;
    if (j === ownIndex || j >= all || regions.covers(j, q, gen)) continue;
    const count = (((all - j - 1) / ownCount) | 0) + 1;
    const busy = c.busy;
    scanShards(v, q, c, rowLimit, j, ownCount, count, rng.below(count), rng.below(size), k, mem);
    if (c.found === 0 && c.busy === busy) regions.record(j, q, gen);
  }
}
