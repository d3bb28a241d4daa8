/**
 * A constraint set compiled for the hot path: a flat Int32 program of (op, key slot, argument)
 * triples. Strings are gone: values are interned ids, regexes are precomputed sets of matching ids.
 * Crosses to workers by structured clone once per dispatch that uses it.
 */
export const Op = {
  /** Attribute equals a value id. */
  EQ: 1,
  /** Attribute differs from a value id (a node without the attribute passes, as in Nomad). */
  NE: 2,
  /** Attribute value id is in a precomputed match set (regex compiled against every known value). */
  IN_SET: 3,
  /** At most N instances of the job per value of the attribute (Aurora's `limit:N`). */
  LIMIT: 4,
  /** At most one instance of the job per node. */
  DISTINCT_HOSTS: 5,
} as const;

export const OP_STRIDE = 3;

export interface CompiledConstraints {
  /** Stable id, the allocator's cache key. */
  id: number;
  /** Attribute generation the regex sets were computed at. */
  generation: number;
  /** [op, slot, arg] triples; slot -1 means no node has ever had the key. */
  program: Int32Array;
  /** For IN_SET: program arg indexes this list; byte per value id, 1 = match. */
  matchSets: Uint8Array[];
  /** True when the set has LIMIT or DISTINCT_HOSTS: placements depend on the job's other instances. */
  jobScoped: boolean;
  /** Human text per constraint, for reasons ("zone=eu-3"). */
  text: string[];
}
