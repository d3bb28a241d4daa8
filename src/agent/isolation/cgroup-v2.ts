/**
 * cgroup v2 (unified hierarchy) isolation: one cgroup per task at `<mount>/<root>/<taskId>` with memory.max,
 * cpu.weight and cpu.max, reporting memory.current, cpu.stat usage_usec and the oom_kill count of memory.events.
 */
import path from 'node:path';
import type { Isolator, IsolatorHandle, ResourceLimits, ResourceUsage } from './types.js';
import {
  CgroupHandle,
  checkCgroupRoot,
  destroyHandle,
  handleOf,
  killCgroup,
  liveHandleOf,
  listProcs,
  makeDir,
  makeFreshDir,
  parseKeyedCounters,
  parseMountinfo,
  readMountinfo,
  readNumber,
  readText,
  removeDirsQuietly,
  removeEmptyLevels,
  tryWriteValue,
  v2MountPoint,
  writeValue,
} from './cgroupfs.js';
import { CFS_PERIOD_US, cfsQuotaFor, checkAgentId, checkLimits, checkTaskId, cpuWeightFor, memoryLimitBytes } from './limits.js';

export interface CgroupV2Options {
  agentId: string;
  /** Relative path inside the unified hierarchy; default `borealis/<agentId>`. */
  root?: string;
  /** Enforce a hard CPU cap through cpu.max on top of proportional weight. */
  cfsQuota?: boolean;
  /** The cgroup2 mount point, instead of reading /proc/self/mountinfo. */
  mountPoint?: string;
}

class V2Handle extends CgroupHandle {
  constructor(
    taskId: string,
    limits: Readonly<ResourceLimits>,
    readonly dir: string,
  ) {
    super(taskId, limits, [dir]);
  }
}

/** `cpu.max` takes "<quota> <period>" in microseconds. */
export function formatCpuMax(cpusMilli: number, periodUs = CFS_PERIOD_US): string {
  return `${cfsQuotaFor(cpusMilli, periodUs)} ${periodUs}`;
}

export class CgroupV2Isolator implements Isolator {
  readonly name = 'cgroup-v2' as const;
  readonly root: string;
  readonly mountPoint: string;
  #controllers: string[];
  readonly #cfsQuota: boolean;
  #rootReady: Promise<void> | undefined;

  private constructor(mountPoint: string, root: string, controllers: string[], cfsQuota: boolean) {
    this.mountPoint = mountPoint;
    this.root = root;
    this.#controllers = controllers;
    this.#cfsQuota = cfsQuota;
  }

  get controllers(): readonly string[] {
    return this.#controllers;
  }

  /** Finds the unified hierarchy and checks that it offers the memory controller (cpu is used when offered). */
  static async open(opts: CgroupV2Options): Promise<CgroupV2Isolator> {
    const root = checkCgroupRoot(opts.root ?? `borealis/${checkAgentId(opts.agentId)}`);
    const mount = opts.mountPoint ?? v2MountPoint(parseMountinfo(await readMountinfo()));
    if (mount === undefined) throw new Error('no cgroup2 filesystem is mounted');
    const offered = (await readText(path.join(mount, 'cgroup.controllers'))).trim().split(/\s+/).filter(Boolean);
    // On "hybrid" hosts cgroup2 is mounted but memory and cpu stay bound to v1 hierarchies.
    if (!offered.includes('memory')) {
      throw new Error(`the cgroup2 hierarchy at ${mount} does not offer the memory controller (offers: ${offered.join(',') || 'none'})`);
    }
    return new CgroupV2Isolator(mount, root, offered.filter((c) => c === 'memory' || c === 'cpu'), opts.cfsQuota ?? true);
  }

  /**
   * v2 only gives a cgroup the memory.* and cpu.* files if every ancestor enables the controller in
   * cgroup.subtree_control, so the agent's root is created level by level with the controllers switched on.
   * Tasks are the only leaves: v2 forbids processes in a cgroup that distributes controllers to children.
   */
  #ensureRoot(): Promise<void> {
    this.#rootReady ??= (async () => {
      const levels = [this.mountPoint];
      for (const part of this.root.split('/')) levels.push(path.join(levels[levels.length - 1]!, part));
      let cpu = this.#controllers.includes('cpu');
      for (const dir of levels) {
        await makeDir(dir);
        await writeValue(path.join(dir, 'cgroup.subtree_control'), '+memory');
        // cpu can be refused (e.g. realtime processes in the parent); then tasks get memory isolation only.
        if (cpu) cpu = await tryWriteValue(path.join(dir, 'cgroup.subtree_control'), '+cpu');
      }
      if (!cpu) this.#controllers = this.#controllers.filter((c) => c !== 'cpu');
    })();
    this.#rootReady.catch(() => {
      this.#rootReady = undefined; // let a later prepare try again
    });
    return this.#rootReady;
  }

  async prepare(taskId: string, limits: ResourceLimits): Promise<IsolatorHandle> {
    checkTaskId(taskId);
    const lim = checkLimits(limits);
    await this.#ensureRoot();
    const dir = path.join(this.mountPoint, this.root, taskId);
    await makeFreshDir(dir, killCgroup);
    try {
      await writeValue(path.join(dir, 'memory.max'), memoryLimitBytes(lim));
      await tryWriteValue(path.join(dir, 'memory.swap.max'), 0); // the limit means RAM; absent without swap
      // On OOM kill the whole task rather than one process of it, as a container would (kernel 4.19+).
      await tryWriteValue(path.join(dir, 'memory.oom.group'), 1);
      if (this.#controllers.includes('cpu')) {
        await writeValue(path.join(dir, 'cpu.weight'), cpuWeightFor(lim.cpusMilli));
        if (this.#cfsQuota) await writeValue(path.join(dir, 'cpu.max'), formatCpuMax(lim.cpusMilli));
      }
    } catch (err) {
      await removeDirsQuietly([dir]);
      throw err;
    }
    return new V2Handle(taskId, lim, dir);
  }

  async attach(handle: IsolatorHandle, pid: number): Promise<void> {
    // Children forked later inherit the cgroup; the executor attaches before the task's command is exec'd.
    await writeValue(path.join(this.#own(handle).dir, 'cgroup.procs'), pid);
  }

  async usage(handle: IsolatorHandle): Promise<ResourceUsage> {
    const h = this.#own(handle);
    const rssBytes = await readNumber(path.join(h.dir, 'memory.current'));
    // cpu.stat exists in every v2 cgroup, with or without the cpu controller.
    const usec = parseKeyedCounters(await readText(path.join(h.dir, 'cpu.stat'))).get('usage_usec');
    return usec === undefined ? { rssBytes } : { rssBytes, cpuSeconds: usec / 1e6 };
  }

  async wasOomKilled(handle: IsolatorHandle): Promise<boolean> {
    const h = this.#own(handle);
    // The cgroup is always fresh (prepare removes stale ones), so any kill counted here was this task's.
    return ((parseKeyedCounters(await readText(path.join(h.dir, 'memory.events'))).get('oom_kill') ?? 0) > 0);
  }

  async destroy(handle: IsolatorHandle): Promise<void> {
    await destroyHandle(this.#handle(handle), killCgroup);
  }

  async close(): Promise<void> {
    await removeEmptyLevels(this.mountPoint, this.root);
  }

  /** Pids currently in the task's cgroup (for diagnostics and tests). */
  async pids(handle: IsolatorHandle): Promise<number[]> {
    return listProcs(this.#own(handle).dir);
  }

  #handle(handle: IsolatorHandle): V2Handle {
    return handleOf(handle, V2Handle, this.name);
  }

  #own(handle: IsolatorHandle): V2Handle {
    return liveHandleOf(handle, V2Handle, this.name);
  }
}


