import type { PlacementQuery } from '../query.js';
import { RequestShapes } from '../request-shapes.js';

/**
 * Per thread, per shard: the last request a full read of the shard found no row for, and the table
 * generation it was read at (FREED_GEN + TOPOLOGY_GEN, as for the verdict cache). Until something
 * is freed or the topology changes, free amounts only shrink, so a request at least as large in
 * every dimension fits no row of that shard either, and the fallback scan skips it without reading
 * it. A constrained miss covers only the same constraint set (and, for job-scoped sets, the same
 * job state at the same version); an unconstrained one covers any set.
 * Why: a shard summary admits a request when each dimension has room on some row, and ignores
 * attributes, so a shard whose rows in the task's zone are full, or whose room is split between
 * rows, is read in full by every task of that shape. In a filling cluster that was most of the rows
 * the scans read. One slot a shard, overwritten by the next miss; typed arrays, grown with the table.
 */
export class ShardMisses {
  private readonly shapes = new RequestShapes(0);

  covers(shard: number, q: PlacementQuery, gen: number): boolean {
    return shard < this.shapes.size && this.shapes.covers(shard, q, gen, false);
  }

  record(shard: number, q: PlacementQuery, gen: number): void {
    if (shard >= this.shapes.size) this.shapes.grow(shard + 1);
    this.shapes.write(shard, q, gen);
  }
}
