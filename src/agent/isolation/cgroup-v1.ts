/**
 * cgroup v1 isolation: one cgroup per task in the memory hierarchy (hard limit, usage, OOM count) and, when they
 * are mounted, in the cpu hierarchy (shares, CFS cap) and the cpuacct hierarchy (CPU time). Each task lives at
 * `<mount>/<root>/<taskId>`, where root defaults to `borealis/<agentId>`, the way Mesos keeps `mesos/<id>`.
 */
import path from 'node:path';
import type { Isolator, IsolatorHandle, ResourceLimits, ResourceUsage } from './types.js';
import {
  CgroupHandle,
  checkCgroupRoot,
  destroyHandle,
  drain,
  handleOf,
  liveHandleOf,
  exists,
  listProcs,
  makeFreshDir,
  parseKeyedCounters,
  parseMountinfo,
  readMountinfo,
  readNumber,
  readText,
  removeDirsQuietly,
  removeEmptyLevels,
  tryWriteValue,
  v1Hierarchies,
  writeValue,
} from './cgroupfs.js';
import { CFS_PERIOD_US, cfsQuotaFor, checkAgentId, checkLimits, checkTaskId, cpuSharesFor, memoryLimitBytes } from './limits.js';

export interface CgroupV1Options {
  agentId: string;
  /** Relative path inside each hierarchy; default `borealis/<agentId>`. */
  root?: string;
  /** Enforce a hard CPU cap with CFS quota on top of proportional shares. */
  cfsQuota?: boolean;
  /** Mount points by controller, instead of reading /proc/self/mountinfo. */
  hierarchies?: Partial<Record<V1Controller, string>>;
}

type V1Controller = 'memory' | 'cpu' | 'cpuacct';

class V1Handle extends CgroupHandle {
  constructor(
    taskId: string,
    limits: Readonly<ResourceLimits>,
    /** Task cgroup per controller; co-mounted controllers share one directory. */
    readonly byController: ReadonlyMap<V1Controller, string>,
  ) {
    super(taskId, limits, [...new Set(byController.values())]);
  }
}

export class CgroupV1Isolator implements Isolator {
  readonly name = 'cgroup-v1' as const;
  readonly controllers: readonly string[];
  readonly root: string;
  readonly #mounts: ReadonlyMap<V1Controller, string>;
  readonly #cfsQuota: boolean;

  private constructor(mounts: ReadonlyMap<V1Controller, string>, root: string, cfsQuota: boolean) {
    this.#mounts = mounts;
    this.root = root;
    this.#cfsQuota = cfsQuota;
    this.controllers = [...mounts.keys()];
  }

  /** Finds the hierarchies; the memory controller is required, cpu and cpuacct are used when present. */
  static async open(opts: CgroupV1Options): Promise<CgroupV1Isolator> {
    const root = checkCgroupRoot(opts.root ?? `borealis/${checkAgentId(opts.agentId)}`);
    const found = opts.hierarchies ?? Object.fromEntries(v1Hierarchies(parseMountinfo(await readMountinfo())));
    const mounts = new Map<V1Controller, string>();
    for (const c of ['memory', 'cpu', 'cpuacct'] as const) {
      const mount = found[c];
      if (mount !== undefined && (await exists(path.join(mount, 'cgroup.procs')))) mounts.set(c, mount);
    }
    if (!mounts.has('memory')) throw new Error('no cgroup v1 memory hierarchy is mounted');
    return new CgroupV1Isolator(mounts, root, opts.cfsQuota ?? true);
  }

  /** The agent's root directory in the memory hierarchy, for log lines. */
  get memoryRoot(): string {
    return path.join(this.#mounts.get('memory')!, this.root);
  }

  async prepare(taskId: string, limits: ResourceLimits): Promise<IsolatorHandle> {
    checkTaskId(taskId);
    const lim = checkLimits(limits);
    const dirs = new Map<V1Controller, string>();
    for (const [c, mount] of this.#mounts) dirs.set(c, path.join(mount, this.root, taskId));
    const unique = [...new Set(dirs.values())];
    try {
      for (const dir of unique) await makeFreshDir(dir, drain);
      const mem = dirs.get('memory')!;
      const bytes = memoryLimitBytes(lim);
      await writeValue(path.join(mem, 'memory.limit_in_bytes'), bytes);
      // memory+swap at the same value forbids swapping, so the limit means RAM. Absent without swap accounting.
      await tryWriteValue(path.join(mem, 'memory.memsw.limit_in_bytes'), bytes);
      const cpu = dirs.get('cpu');
      if (cpu !== undefined) {
        await writeValue(path.join(cpu, 'cpu.shares'), cpuSharesFor(lim.cpusMilli));
        if (this.#cfsQuota) {
          await writeValue(path.join(cpu, 'cpu.cfs_period_us'), CFS_PERIOD_US);
          await writeValue(path.join(cpu, 'cpu.cfs_quota_us'), cfsQuotaFor(lim.cpusMilli));
        }
      }
      return new V1Handle(taskId, lim, dirs);
    } catch (err) {
      await removeDirsQuietly(unique);
      throw err;
    }
  }

  async attach(handle: IsolatorHandle, pid: number): Promise<void> {
    const h = this.#own(handle);
    // v1 moves only the written pid; children forked earlier stay behind, which is why the executor attaches
    // before the task's command is exec'd.
    for (const dir of h.dirs) await writeValue(path.join(dir, 'cgroup.procs'), pid);
  }

  async usage(handle: IsolatorHandle): Promise<ResourceUsage> {
    const h = this.#own(handle);
    const rssBytes = await readNumber(path.join(h.byController.get('memory')!, 'memory.usage_in_bytes'));
    const acct = h.byController.get('cpuacct');
    if (acct === undefined) return { rssBytes };
    const ns = await readNumber(path.join(acct, 'cpuacct.usage'));
    return { rssBytes, cpuSeconds: ns / 1e9 };
  }

  async wasOomKilled(handle: IsolatorHandle, exitSignal?: NodeJS.Signals | null): Promise<boolean> {
    const h = this.#own(handle);
    const mem = h.byController.get('memory')!;
    // The cgroup is always fresh (prepare removes stale ones), so any kill counted here was this task's.
    const kills = parseKeyedCounters(await readText(path.join(mem, 'memory.oom_control'))).get('oom_kill');
    if (kills !== undefined) return kills > 0;
    // Kernels before 4.13 keep no kill count. failcnt alone is not enough (it also counts limit hits that page
    // cache reclaim resolved), so only a leader that died of SIGKILL after hitting the limit counts as OOM.
    return exitSignal === 'SIGKILL' && (await readNumber(path.join(mem, 'memory.failcnt'))) > 0;
  }

  async destroy(handle: IsolatorHandle): Promise<void> {
    await destroyHandle(this.#handle(handle), drain);
  }

  async close(): Promise<void> {
    for (const mount of new Set(this.#mounts.values())) await removeEmptyLevels(mount, this.root);
  }

  /** The task's cgroup directory in one controller's hierarchy, if that controller is in use. */
  dirOf(handle: IsolatorHandle, controller: V1Controller): string | undefined {
    return this.#handle(handle).byController.get(controller);
  }

  /** Pids currently in the task's memory cgroup (for diagnostics and tests). */
  async pids(handle: IsolatorHandle): Promise<number[]> {
    return listProcs(this.#own(handle).byController.get('memory')!);
  }

  #handle(handle: IsolatorHandle): V1Handle {
    return handleOf(handle, V1Handle, this.name);
  }

  #own(handle: IsolatorHandle): V1Handle {
    return liveHandleOf(handle, V1Handle, this.name);
  }
}
