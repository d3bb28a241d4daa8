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

/**
 * A placement outcome has one int32 slot for its reason on its way out (the placer, the verdict
 * cache, the allocator's shared result buffer), so a reason word packs two things: the Reason in
 * the low REASON_BITS, and above them how many nodes were draining or down when the reason names
 * what blocked the nodes that are up. That count is context only ("zone limit 1 reached on every
 * eligible up node (2 nodes draining or down)"): attributing the whole verdict to the absent nodes
 * hid the real block. NODE_NOT_UP itself keeps the count in its detail and a bare word.
 * Constraint reasons above REASON_SLOTS are never chosen (Diagnosis counts only below it), so the
 * low bits never overflow into the count.
 */
export const REASON_BITS = 6;
const REASON_MASK = (1 << REASON_BITS) - 1;

export function reasonWord(reason: number, notUp: number): number {
  return reason | (notUp << REASON_BITS);
}

/** The Reason of a reason word. */
export function reasonCode(word: number): number {
  return word & REASON_MASK;
}

/** Nodes that were draining or down besides the reason (0 when all were up, or for NODE_NOT_UP). */
export function reasonNotUp(word: number): number {
  return word >>> REASON_BITS;
}

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
