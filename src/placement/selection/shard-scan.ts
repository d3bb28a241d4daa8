import { recomputeSummary } from '../../table/summary.js';
import type { TableView } from '../../table/view.js';
import type { PlacementQuery } from '../query.js';
import type { ShardBounds } from './bounds.js';
import type { Candidates } from './candidates.js';

/**
 * Offers every row of `count` shards to `c`: the shards first + k * step for k in [0, count),
 * starting at k = `from` and wrapping, skipping shards whose summary proves nothing fits (bounds.ts:
 * fitLoad, free maxima and the fit grid), until `enough` feasible rows were found. A step above 1
 * walks one thread's interleaved shards (see Placer.setOwnership). A shard whose summary promised a
 * fit but held none is recomputed, so the next scan skips it.
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
  enough: number,
  bounds: ShardBounds,
): void {
  const size = v.shardSize;
  bounds.begin(q);
  for (let i = 0; i < count; i++) {
    let k = from + i;
    if (k >= count) k -= count;
    const shard = first + k * step;
    if (bounds.fitLoad(v, shard) < 0) continue;
    const r0 = shard * size;
    const r1 = r0 + size < rowLimit ? r0 + size : rowLimit;
    const foundBefore = c.found;
    const missesBefore = c.resourceMisses;
    for (let row = r0; row < r1; row++) c.offer(v, q, row);
    if (c.found === foundBefore && c.resourceMisses - missesBefore > 0) recomputeSummary(v, shard, rowLimit);
    if (c.found >= enough) return;
  }
}
