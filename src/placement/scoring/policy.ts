/** Placement policies (a job's `placement` field). */
export const Policy = { BINPACK: 0, SPREAD: 1, BALANCED: 2 } as const;
export type PolicyValue = (typeof Policy)[keyof typeof Policy];
export const POLICY_NAMES = ['binpack', 'spread', 'balanced'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export function policyFromName(name: string): PolicyValue | -1 {
  const i = (POLICY_NAMES as readonly string[]).indexOf(name);
  return i < 0 ? -1 : (i as PolicyValue);
}

/**
 * Subtracted from the score of a GPU node for a task that wants no GPU: GPUs are the scarcest
 * resource in a heterogeneous cluster, and a CPU task parked on a GPU node can strand them.
 * Larger than any score difference between nodes (scores lie in [0, 1]), so a GPU node is used
 * for CPU work only when nothing else fits.
 */
export const GPU_NODE_PENALTY = 1;
