import type { JobPlacementState } from '../constraints/job-state.js';
import type { PlacementQuery } from '../query.js';

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
  private gen = new Int32Array(0);
  private live = new Uint8Array(0);
  private cpu = new Int32Array(0);
  private mem = new Int32Array(0);
  private disk = new Int32Array(0);
  private gpu = new Int32Array(0);
  private ports = new Int32Array(0);
  /** Constraint set id, -1 for an unconstrained miss. */
  private cset = new Int32Array(0);
  private jobVersion = new Int32Array(0);
  private job: (JobPlacementState | null)[] = [];

  covers(shard: number, q: PlacementQuery, gen: number): boolean {
    if (shard >= this.live.length || this.live[shard] !== 1 || this.gen[shard] !== gen) return false;
    const cs = this.cset[shard]!;
    if (cs >= 0 && (q.cset === null || q.cset.id !== cs || this.job[shard] !== q.job || (q.job !== null && this.jobVersion[shard] !== q.job.version))) {
      return false;
    }
    return (
      q.cpu >= this.cpu[shard]! &&
      q.mem >= this.mem[shard]! &&
      q.disk >= this.disk[shard]! &&
      q.gpu >= this.gpu[shard]! &&
      q.ports >= this.ports[shard]!
    );
  }

  record(shard: number, q: PlacementQuery, gen: number): void {
    if (shard >= this.live.length) this.grow(shard + 1);
    this.live[shard] = 1;
    this.gen[shard] = gen;
    this.cpu[shard] = q.cpu;
    this.mem[shard] = q.mem;
    this.disk[shard] = q.disk;
    this.gpu[shard] = q.gpu;
    this.ports[shard] = q.ports;
    this.cset[shard] = q.cset === null ? -1 : q.cset.id;
    this.job[shard] = q.job;
    this.jobVersion[shard] = q.job === null ? 0 : q.job.version;
  }

  private grow(min: number): void {
    const n = Math.max(min, this.live.length * 2, 64);
    const widen = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    const live = new Uint8Array(n);
    live.set(this.live);
    this.live = live;
    this.gen = widen(this.gen);
    this.cpu = widen(this.cpu);
    this.mem = widen(this.mem);
    this.disk = widen(this.disk);
    this.gpu = widen(this.gpu);
    this.ports = widen(this.ports);
    this.cset = widen(this.cset);
    this.jobVersion = widen(this.jobVersion);
    const job = new Array<JobPlacementState | null>(n).fill(null);
    for (let i = 0; i < this.job.length; i++) job[i] = this.job[i]!;
    this.job = job;
  }
}
