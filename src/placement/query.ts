import type { CompiledConstraints } from './constraints/compiled.js';
import type { JobPlacementState } from './constraints/job-state.js';

/**
 * One task's placement request as the hot path sees it. A single instance is reused for every
 * task (reset, not reallocated), as Nomad reuses its stack between Select calls.
 */
export class PlacementQuery {
  cpu = 0;
  mem = 0;
  disk = 0;
  gpu = 0;
  ports = 0;
  policy = 0;
  cset: CompiledConstraints | null = null;
  job: JobPlacementState | null = null;

  set(
    cpu: number,
    mem: number,
    disk: number,
    gpu: number,
    ports: number,
    policy: number,
    cset: CompiledConstraints | null,
    job: JobPlacementState | null,
  ): this {
    this.cpu = cpu;
    this.mem = mem;
    this.disk = disk;
    this.gpu = gpu;
    this.ports = ports;
    this.policy = policy;
    this.cset = cset;
    this.job = job;
    return this;
  }

  /** True when `o` asks for the same amounts under the same policy (its constraints and job aside). */
  sameShape(o: PlacementQuery): boolean {
    return this.cpu === o.cpu && this.mem === o.mem && this.disk === o.disk && this.gpu === o.gpu && this.ports === o.ports && this.policy === o.policy;
  }
}
