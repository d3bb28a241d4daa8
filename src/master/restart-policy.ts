import { STABLE_RUN_MS, backoffDelay } from './backoff.js';
import type { InstanceSlot, JobRecord, TaskRecord } from './store.js';

/** Aurora's default (max_task_failures = 1): a batch instance that fails is not retried unless the job asks. */
export const DEFAULT_BATCH_MAX_RETRIES = 0;

/**
 * What an instance whose current attempt has ended needs next:
 * - replace: start a new attempt (after the slot's backoff);
 * - done: nothing (a batch instance that finished, or that the master was asked to kill);
 * - exhausted: a batch instance out of retries: the job has failed.
 */
export type Next = 'replace' | 'done' | 'exhausted';

export function nextForEnded(job: JobRecord, slot: InstanceSlot, ended: TaskRecord): Next {
  // Services are kept at N whatever happened: Aurora restarts a service task even after exit 0.
  if (job.spec.type === 'service') return 'replace';
  if (ended.state === 'finished' || ended.killRequested) return 'done';
  // A lost task did not fail (its agent did): run it again without spending a retry.
  if (ended.state === 'lost') return 'replace';
  const maxRetries = job.spec.restartPolicy?.maxRetries ?? DEFAULT_BATCH_MAX_RETRIES;
  return slot.failures > maxRetries ? 'exhausted' : 'replace';
}

/** Whether an ending counts toward the instance's failure streak (and so its restart backoff). */
export function isFailure(job: JobRecord, t: TaskRecord): boolean {
  if (t.state === 'failed') return true;
  if (t.state === 'killed') return !t.killRequested; // killed by the agent (unhealthy, oom)
  return t.state === 'finished' && job.spec.type === 'service';
}

/**
 * Updates the slot's failure streak for the attempt that just ended and returns the earliest time
 * (performance.now() clock) its replacement may start.
 */
export function noteEnding(job: JobRecord, slot: InstanceSlot, t: TaskRecord, now: number, baseMs: number, capMs: number): number {
  if (!isFailure(job, t)) return now;
  const runningAt = t.history.find((h) => h.state === 'running')?.at;
  const endedAt = t.history[t.history.length - 1]?.at ?? Date.now();
  const ranStable = runningAt !== undefined && endedAt - runningAt >= STABLE_RUN_MS;
  slot.consecutive = ranStable ? 1 : slot.consecutive + 1;
  const base = job.spec.restartPolicy?.backoffMs ?? baseMs;
  const cap = job.spec.restartPolicy?.maxBackoffMs ?? Math.max(capMs, base);
  return now + backoffDelay(slot.consecutive, base, cap);
}
