/**
 * Outcome of placing one task: a closed set of codes. Each says what the caller does next.
 */
export const Status = {
  /** Placed and committed in the shared table. The caller launches it. */
  OK: 0,
  /** No node fits now, but some node could hold it once resources free up: keep it pending, retry later. */
  UNPLACEABLE: 1,
  /** No node could ever hold it as the cluster stands (capacity or constraints): report it; retry only when topology changes. */
  UNPLACEABLE_FINAL: 2,
  /** Placement itself failed (a bug or a broken table): surface the error, do not retry blindly. */
  ERROR: 3,
} as const;
export type StatusValue = (typeof Status)[keyof typeof Status];
export const STATUS_NAMES = ['ok', 'unplaceable', 'unplaceable_final', 'error'] as const;

/**
 * Why a node said no, in the order the stack asks. Diagnosis counts, per task, the first filter
 * each node fails; the dominant one becomes the task's reason. Constraint reasons are
 * REASON_CONSTRAINT_BASE + the constraint's index in its set.
 */
export const Reason = {
  NONE: 0,
  NO_NODES: 1,
  NODE_NOT_UP: 2,
  CPU: 3,
  MEM: 4,
  DISK: 5,
  GPU: 6,
  PORTS: 7,
  LIMIT: 8,
  DISTINCT_HOSTS: 9,
  CONFLICTS: 10,
  CONSTRAINT_BASE: 16,
} as const;

export const REASON_SLOTS = 64;

/** Constant strings, so the hot path never formats. Details are formatted once, off the hot path. */
export const REASON_NAMES: Record<number, string> = {
  [Reason.NONE]: 'none',
  [Reason.NO_NODES]: 'no nodes in the cluster',
  [Reason.NODE_NOT_UP]: 'no node is up',
  [Reason.CPU]: 'insufficient cpus',
  [Reason.MEM]: 'insufficient mem',
  [Reason.DISK]: 'insufficient disk',
  [Reason.GPU]: 'insufficient gpus',
  [Reason.PORTS]: 'insufficient ports',
  [Reason.LIMIT]: 'limit constraint reached',
  [Reason.DISTINCT_HOSTS]: 'distinct hosts: every fitting node already runs an instance',
  [Reason.CONFLICTS]: 'too many commit conflicts',
};
