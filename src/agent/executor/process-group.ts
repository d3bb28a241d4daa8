/**
 * Tasks run in their own process group (spawned detached, so setsid makes the leader's pid the group id). A shell
 * wrapper, a supervisor or a server's workers are all separate processes; signalling the group reaches every one of
 * them, including grandchildren whose parent already died, with a single kill(2) and no walk of /proc.
 */

/** Sends `signal` to every process in group `pgid`. False when the group is already empty. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
