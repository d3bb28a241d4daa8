import { BadResourcesError, InvalidArgumentError } from '../../api/errors.js';
import type { FieldProblem } from '../../api/errors.js';
import type { ResourceLimits } from './types.js';

const MIB = 1024 * 1024;

/**
 * CFS period for the hard CPU cap. 100 ms is the kernel's default: shorter periods cost scheduler overhead, longer
 * ones let a capped task burst for longer before being throttled.
 */
export const CFS_PERIOD_US = 100_000;

/** The kernel refuses a CFS quota below 1 ms. */
const MIN_CFS_QUOTA_US = 1_000;

/** Kernel bounds for cgroup v1 `cpu.shares` and cgroup v2 `cpu.weight`. */
const MIN_CPU_SHARES = 2;
const MAX_CPU_SHARES = 262_144;
const MIN_CPU_WEIGHT = 1;
const MAX_CPU_WEIGHT = 10_000;

/** Task and agent ids become directory names (sandbox, cgroup), so they must not be able to walk the tree. */
const SAFE_NAME_RE = /^[A-Za-z0-9_@:][A-Za-z0-9_.@:-]{0,199}$/;

export function checkSafeName(value: string, what: string, field: string): string {
  if (typeof value !== 'string' || !SAFE_NAME_RE.test(value)) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(value)} must be 1-200 characters of letters, digits and _ . @ : - (not starting with . or -)`,
      [{ path: field, message: 'not a safe directory name' }],
    );
  }
  return value;
}

export function checkTaskId(taskId: string): string {
  return checkSafeName(taskId, 'task id', 'taskId');
}

export function checkAgentId(agentId: string): string {
  return checkSafeName(agentId, 'agent id', 'agentId');
}

/** Limits are whole MiB and whole millicores, as everywhere else in Borealis. */
export function checkLimits(limits: ResourceLimits): ResourceLimits {
  const problems: FieldProblem[] = [];
  if (!Number.isSafeInteger(limits?.memMiB) || limits.memMiB < 1) {
    problems.push({ path: 'limits.memMiB', message: 'must be a whole number of MiB, at least 1' });
  }
  if (!Number.isSafeInteger(limits?.cpusMilli) || limits.cpusMilli < 1) {
    problems.push({ path: 'limits.cpusMilli', message: 'must be a whole number of millicores, at least 1' });
  }
  if (problems.length > 0) throw new BadResourcesError('invalid task resource limits', problems);
  return { memMiB: limits.memMiB, cpusMilli: limits.cpusMilli };
}

export function memoryLimitBytes(limits: ResourceLimits): number {
  return limits.memMiB * MIB;
}

/**
 * cgroup v1 `cpu.shares`. The kernel gives every cgroup 1024 shares by default, i.e. "one CPU's worth" of
 * weight, so a task asking for N millicores gets N*1024/1000: tasks then compete in proportion to what they asked
 * for, and an idle machine still lets any of them use spare cycles.
 */
export function cpuSharesFor(cpusMilli: number): number {
  return clamp(Math.round((cpusMilli * 1024) / 1000), MIN_CPU_SHARES, MAX_CPU_SHARES);
}

/**
 * cgroup v2 `cpu.weight`. The v2 default weight is 100, playing the role 1024 played in v1, so one CPU maps to
 * 100 and the proportions between tasks stay the same as under v1.
 */
export function cpuWeightFor(cpusMilli: number): number {
  return clamp(Math.round(cpusMilli / 10), MIN_CPU_WEIGHT, MAX_CPU_WEIGHT);
}

/** CFS quota per period for a hard cap of `cpusMilli`: 1500 millicores may run 150 ms of every 100 ms. */
export function cfsQuotaFor(cpusMilli: number, periodUs = CFS_PERIOD_US): number {
  return Math.max(MIN_CFS_QUOTA_US, Math.round((cpusMilli * periodUs) / 1000));
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
