/**
 * Task isolation for the agent: per-task cgroups (v1 or v2) with memory and CPU limits, or /proc polling where
 * no cgroup can be created. `detectIsolator` picks the best one by trying it.
 */
export type { Isolator, IsolatorHandle, IsolatorName, ResourceLimits, ResourceUsage } from './types.js';
export { CgroupV1Isolator } from './cgroup-v1.js';
export type { CgroupV1Options } from './cgroup-v1.js';
export { CgroupV2Isolator, formatCpuMax } from './cgroup-v2.js';
export type { CgroupV2Options } from './cgroup-v2.js';
export { RssPollIsolator } from './rss-poll.js';
export type { RssPollOptions } from './rss-poll.js';
export { detectIsolator } from './detect.js';
export type { Detection, DetectAttempt, DetectOptions } from './detect.js';
export { checkAgentId, checkLimits, checkTaskId, cpuSharesFor, cpuWeightFor, cfsQuotaFor, memoryLimitBytes, CFS_PERIOD_US } from './limits.js';
export { isAlive } from './proc.js';
