/**
 * Picks the strongest isolation this machine allows, by trying it: a probe cgroup is created with real limits and
 * removed again. Reading mount tables is not enough: cgroupfs may be mounted read-only, delegated only in part, or
 * the agent may not be root.
 */
import { BorealisError, ErrorCodes, InvalidArgumentError } from '../../api/errors.js';
import type { Isolator, IsolatorName } from './types.js';
import { CgroupV1Isolator } from './cgroup-v1.js';
import { CgroupV2Isolator } from './cgroup-v2.js';
import { RssPollIsolator } from './rss-poll.js';
import { readProcStat } from './proc.js';
import { checkAgentId } from './limits.js';

export interface DetectOptions {
  agentId: string;
  /** Relative cgroup path for the agent's tasks; default `borealis/<agentId>`. */
  root?: string;
  /**
   * Isolators to try, best first. v2 leads the default because on a pure v2 host it is the only one that can
   * work, and on hybrid hosts it fails fast (its hierarchy lacks the memory controller) and v1 takes over.
   */
  allow?: readonly IsolatorName[];
  /** Hard CPU caps (CFS quota / cpu.max) on top of proportional shares. */
  cfsQuota?: boolean;
  rssPollIntervalMs?: number;
}

export interface DetectAttempt {
  name: IsolatorName;
  ok: boolean;
  reason: string;
}

export interface Detection {
  isolator: Isolator;
  name: IsolatorName;
  /** For the agent's start-up log: `cgroup-v1 (memory,cpu,cpuacct)`. */
  summary: string;
  /** Why this one, including why the better ones were passed over. */
  reason: string;
  attempts: DetectAttempt[];
}

const ALL: readonly IsolatorName[] = ['cgroup-v2', 'cgroup-v1', 'rss-poll'];

/** The probe is sized like a small real task so that writing its limits exercises the same kernel paths. */
const PROBE_LIMITS = { memMiB: 64, cpusMilli: 100 };

export async function detectIsolator(opts: DetectOptions): Promise<Detection> {
  checkAgentId(opts.agentId);
  const allow = opts.allow ?? ALL;
  if (allow.length === 0 || allow.some((n) => !ALL.includes(n))) {
    throw new InvalidArgumentError(`allow must list some of ${ALL.join(', ')}`, [
      { path: 'allow', message: `got ${JSON.stringify(allow)}` },
    ]);
  }
  const attempts: DetectAttempt[] = [];
  for (const name of allow) {
    try {
      const isolator = await tryOne(name, opts);
      attempts.push({ name, ok: true, reason: okReason(isolator) });
      return {
        isolator,
        name,
        summary: `${name} (${isolator.controllers.join(',')})`,
        reason: attempts.map((a) => `${a.name}: ${a.reason}`).join('; '),
        attempts,
      };
    } catch (err) {
      attempts.push({ name, ok: false, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  throw new BorealisError(
    ErrorCodes.INTERNAL,
    `no isolator is usable here: ${attempts.map((a) => `${a.name}: ${a.reason}`).join('; ')}`,
  );
}

async function tryOne(name: IsolatorName, opts: DetectOptions): Promise<Isolator> {
  switch (name) {
    case 'cgroup-v2':
      return probe(await CgroupV2Isolator.open(cgroupOpts(opts)));
    case 'cgroup-v1':
      return probe(await CgroupV1Isolator.open(cgroupOpts(opts)));
    case 'rss-poll': {
      const isolator = new RssPollIsolator(opts.rssPollIntervalMs === undefined ? {} : { intervalMs: opts.rssPollIntervalMs });
      if ((await readProcStat(process.pid)) === undefined) throw new Error('/proc/<pid>/stat is not readable');
      return isolator;
    }
  }
}

function cgroupOpts(opts: DetectOptions): { agentId: string; root?: string; cfsQuota?: boolean } {
  const out: { agentId: string; root?: string; cfsQuota?: boolean } = { agentId: opts.agentId };
  if (opts.root !== undefined) out.root = opts.root;
  if (opts.cfsQuota !== undefined) out.cfsQuota = opts.cfsQuota;
  return out;
}

async function probe(isolator: Isolator): Promise<Isolator> {
  const probeId = `probe-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const handle = await isolator.prepare(probeId, PROBE_LIMITS);
    await isolator.destroy(handle);
    return isolator;
  } catch (err) {
    await isolator.close().catch(() => undefined);
    throw err;
  }
}

function okReason(isolator: Isolator): string {
  if (isolator instanceof CgroupV1Isolator) return `probe cgroup created and removed under ${isolator.memoryRoot}`;
  if (isolator instanceof CgroupV2Isolator) return `probe cgroup created and removed under ${isolator.mountPoint}/${isolator.root}`;
  return 'sampling /proc (approximate: no kernel enforcement)';
}
