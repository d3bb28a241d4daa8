import { recomputeSummary, summaryExact } from '../../table/summary.js';
import type { TableView } from '../../table/view.js';
import type { PlacementQuery } from '../query.js';
import { ShardBounds } from './bounds.js';
import type { Candidates } from './candidates.js';
import { RegionMisses } from './region-misses.js';
import { ShardMisses } from './shard-misses.js';

/**
 * What one thread's sampled selection keeps from task to task: the bounds scratch, and the misses
 * its scans learnt (which owners' shards, and which shards, held no row for a request shape) at the
 * table generation `gen`, FREED_GEN + TOPOLOGY_GEN read before the current selection.
 */
export class ScanMemory {
  readonly bounds = new ShardBounds();
  readonly regions = new RegionMisses();
  readonly shards = new ShardMisses();
  gen = 0;
}

/**
 * Offers the rows of `count` shards to `c`: the shards first + k * step for k in [0, count),
 * starting at k = `from` and wrapping, skipping shards whose summary proves nothing fits (bounds.ts:
 * fitLoad, free maxima and the fit grid), until `enough` feasible rows were found, which may be
 * midway through a shard: the first shard is read from its row `fromRow` on, wrapping, so the rows
 * a scan returns are not always a shard's first ones. A step above 1
 * walks one thread's interleaved shards (see Placer.setOwnership). A shard whose stale summary
 * promised a fit but held none is recomputed, so the next scan skips it; a shard read in full with
 * nothing found is remembered (mem.shards) and skipped for requests at least as large until
 * something is freed.
 * This is the sampled selection's fallback when its random probes found nothing.
 */
export function scanShards(
  v: TableView,
  q: PlacementQuery,
  c: Candidates,
  rowLimit: number,
  first: number,
  step: number,
  count: number,
  from: number,
  fromRow: number,
  enough: number,
  mem: ScanMemory,
): void {
  const size = v.shardSize;
  const bounds = mem.bounds;
  const misses = mem.shards;
  const gen = mem.gen;
  bounds.begin(q);
  for (let i = 0; i < count; i++) {
    let k = from + i;
    if (k >= count) k -= count;
    const shard = first + k * step;
    if (misses.covers(shard, q, gen) || bounds.fitLoad(v, shard) < 0) continue;
    const r0 = shard * size;
    const r1 = r0 + size < rowLimit ? r0 + size : rowLimit;
    const rows = r1 - r0;
    const foundBefore = c.found;
    const missesBefore = c.resourceMisses;
    const busyBefore = c.busy;
    let row = i === 0 && fromRow < rows ? r0 + fromRow : r0;
    for (let n = 0; n < rows && c.found < enough; n++) {
      c.offer(v, q, row);
      if (++row === r1) row = r0;
    }
    // Recompute only what moved since the last recompute: an exact summary that admitted the task
    // anyway (its bounds take each dimension from the best row for it, and levels are half
    // octaves) would be stored again unchanged. In a filling cluster that was most recomputes.
    if (c.found === foundBefore) {
      if (c.resourceMisses - missesBefore > 0 && !summaryExact(v, shard)) recomputeSummary(v, shard, rowLimit);
      if (c.busy === busyBefore) misses.record(shard, q, gen);
    }
    if (c.found >= enough) return;
  }
}
