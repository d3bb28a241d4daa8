/**
 * Restart delay after the n-th consecutive failure (n >= 1): base, 2*base, 4*base, ... capped.
 * Doubling (Aurora, Kubernetes' CrashLoopBackOff) backs a crash-looping task off fast enough to spare
 * the cluster while a task that failed once restarts almost at once.
 */
export function backoffDelay(consecutive: number, baseMs: number, capMs: number): number {
  if (consecutive <= 0 || baseMs <= 0) return 0;
  // 2^30 * base overflows nothing and is far past any cap; stop doubling there.
  const exp = Math.min(consecutive - 1, 30);
  return Math.min(capMs, baseMs * 2 ** exp);
}

/**
 * A task that ran this long before it ended counts as having worked: the instance's failure streak
 * starts over (Marathon resets its backoff the same way), so an occasional crash of a long-lived
 * service is not punished with the delay its last crash loop earned.
 */
export const STABLE_RUN_MS = 10_000;
