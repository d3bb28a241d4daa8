/** What an isolator is called in logs and in `detectIsolator`'s answer. */
export type IsolatorName = 'cgroup-v1' | 'cgroup-v2' | 'rss-poll';

/** A task's resource limits, in the units the rest of Borealis uses (MiB, millicores). */
export interface ResourceLimits {
  memMiB: number;
  cpusMilli: number;
}

/** One sample of what a task is using now. */
export interface ResourceUsage {
  /**
   * Memory charged to the task. Under cgroups this is the kernel's own charge (which includes page cache);
   * under rss-poll it is the summed resident set of the process tree.
   */
  rssBytes: number;
  /** Total CPU time consumed so far, when the isolator can tell. */
  cpuSeconds?: number;
}

/** What `prepare` hands back; the isolator keeps its own bookkeeping behind it. */
export interface IsolatorHandle {
  readonly taskId: string;
  readonly limits: Readonly<ResourceLimits>;
  /**
   * The task's cgroup directories (none under rss-poll). The executor checkpoints them, so that an agent restarted
   * after a crash can empty them of processes that left the task's process group.
   */
  readonly dirs?: readonly string[];
}

/**
 * Confines one task's processes and reports on them. The lifecycle is prepare -> attach (once, before the task's
 * own code runs) -> usage / wasOomKilled (any number of times) -> destroy (exactly once, after the task's leader
 * has exited). One isolator instance serves every task of one agent.
 */
export interface Isolator {
  readonly name: IsolatorName;
  /** Controllers in use (cgroups) or the mechanism (rss-poll), for the agent's start-up log line. */
  readonly controllers: readonly string[];
  prepare(taskId: string, limits: ResourceLimits): Promise<IsolatorHandle>;
  attach(handle: IsolatorHandle, pid: number): Promise<void>;
  usage(handle: IsolatorHandle): Promise<ResourceUsage>;
  /**
   * Whether the task was killed for exceeding its memory limit. `exitSignal` is how the task's leader died, when
   * known; isolators whose kernel keeps no OOM-kill counter need it to tell an OOM kill from any other SIGKILL.
   */
  wasOomKilled(handle: IsolatorHandle, exitSignal?: NodeJS.Signals | null): Promise<boolean>;
  /** Kills whatever is still inside and removes the task's cgroup. Safe to call twice. */
  destroy(handle: IsolatorHandle): Promise<void>;
  /** Removes the agent's own (now empty) cgroup root, if any. Tasks still prepared keep it alive. */
  close(): Promise<void>;
}
