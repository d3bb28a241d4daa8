/** What every phase of one benchmark run shares. */
import type { CpuLayout } from './cpus.js';
import type { Upstream } from './nginx.js';
import type { ClosedLoop, OpenLoop } from './load.js';
import type { Supervisor } from './processes.js';
import type { Row } from './rows.js';
import type { Installed, RunningTarget, TargetName } from './targets.js';
import type { LoadResult } from './wrk.js';

export interface RunContext {
  sup: Supervisor;
  inst: Installed;
  /** The run's temp dir (configs, logs, pid files). */
  dir: string;
  layout: CpuLayout;
  closed: ClosedLoop | null;
  open: OpenLoop | null;
  connections: number;
  /** The throughput backends (nginx, or Node when nginx is not installed). */
  upstreams: Upstream[];
  log: (line: string) => void;
  emit: (row: Row) => void;
  /** Every port one of our processes listened on, checked closed at the end. */
  ports: Set<number>;
}

export function targetAlive(t: RunningTarget): boolean {
  return t.proc === null || t.proc.exitStatus === undefined;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The run in the middle by rps (the upper middle for an even count). */
export function medianRun(runs: readonly LoadResult[]): LoadResult {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export type { TargetName };
