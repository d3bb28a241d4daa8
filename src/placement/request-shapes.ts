import type { JobPlacementState } from './constraints/job-state.js';
import type { PlacementQuery } from './query.js';

/**
 * Slots of remembered request shapes, each with the table generation (FREED_GEN + TOPOLOGY_GEN) it
 * was seen at: what the verdict cache and the scan's miss memory (selection/shard-misses.ts) both
 * keep. A slot covers a request at least as large in every dimension, at the same generation, in
 * the same scope: the same constraint set and job state at the same version, or any scope when the
 * caller says so or the slot was unconstrained (constraints only remove rows). Typed columns,
 * grown by the owner; no allocation per lookup.
 */
export class RequestShapes {
  cpu: Int32Array<ArrayBuffer>;
  mem: Int32Array<ArrayBuffer>;
  disk: Int32Array<ArrayBuffer>;
  gpu: Int32Array<ArrayBuffer>;
  ports: Int32Array<ArrayBuffer>;
  /** Constraint set id, -1 for an unconstrained request. */
  cset: Int32Array<ArrayBuffer>;
  gen: Int32Array<ArrayBuffer>;
  live: Uint8Array<ArrayBuffer>;
  job: (JobPlacementState | null)[];
  jobVersion: Int32Array<ArrayBuffer>;

  constructor(slots: number) {
    this.cpu = new Int32Array(slots);
    this.mem = new Int32Array(slots);
    this.disk = new Int32Array(slots);
    this.gpu = new Int32Array(slots);
    this.ports = new Int32Array(slots);
    this.cset = new Int32Array(slots);
    this.gen = new Int32Array(slots);
    this.live = new Uint8Array(slots);
    this.job = new Array<JobPlacementState | null>(slots).fill(null);
    this.jobVersion = new Int32Array(slots);
  }

  get size(): number {
    return this.live.length;
  }

  /** True when slot i covers `q` at `gen` (see the class comment). */
  covers(i: number, q: PlacementQuery, gen: number, anyScope: boolean): boolean {
    if (this.live[i] !== 1 || this.gen[i] !== gen) return false;
    // An unconstrained slot covers any scope; a constrained one only its own set and job version.
    if (!anyScope && (this.cset[i]! >= 0 || this.job[i] !== null)) {
      const job = q.job;
      if ((q.cset === null ? -1 : q.cset.id) !== this.cset[i] || this.job[i] !== job || this.jobVersion[i] !== (job === null ? 0 : job.version)) return false;
    }
    return q.cpu >= this.cpu[i]! && q.mem >= this.mem[i]! && q.disk >= this.disk[i]! && q.gpu >= this.gpu[i]! && q.ports >= this.ports[i]!;
  }

  write(i: number, q: PlacementQuery, gen: number): void {
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
  }

  /** Grows to at least `min` slots, keeping the ones held. */
  grow(min: number): void {
    const n = Math.max(min, this.size * 2, 64);
    const widen = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.cpu = widen(this.cpu);
    this.mem = widen(this.mem);
    this.disk = widen(this.disk);
    this.gpu = widen(this.gpu);
    this.ports = widen(this.ports);
    this.cset = widen(this.cset);
    this.gen = widen(this.gen);
    this.jobVersion = widen(this.jobVersion);
    const live = new Uint8Array(n);
    live.set(this.live);
    this.live = live;
    const job = new Array<JobPlacementState | null>(n).fill(null);
    for (let i = 0; i < this.job.length; i++) job[i] = this.job[i]!;
    this.job = job;
  }
}
