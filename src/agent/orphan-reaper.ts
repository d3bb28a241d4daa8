/**
 * Kills what an earlier run of this agent left running. When an agent process dies without stopping its tasks
 * (SIGKILL, OOM kill, crash), the tasks keep running, detached and re-parented to init, still holding their ports;
 * the master declares them lost and runs replacements elsewhere, so every one is now a duplicate. Mesos' agent
 * recovers such tasks on restart; Borealis does not re-adopt them (the master has already replaced them): it kills
 * them, before registering, so the agent re-registers with none of them and the master's reconciliation counts any
 * it still believed running as lost (master/reconcile.ts: known on the agent but not reported = missing).
 *
 * It goes by the checkpoints the executor writes (executor/checkpoint.ts). A task is killed only when its leader is
 * the very process that was checkpointed, same pid and same start time: a pid recycled by an unrelated process is
 * never signalled. Its cgroups, if it had any, are emptied whatever became of the leader, since a cgroup's members
 * are unambiguously the task's, including processes that left its process group.
 */
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { readCheckpoints } from './executor/checkpoint.js';
import { isSameProcess, liveIdentity } from './isolation/proc.js';
import type { TaskCheckpoint } from './executor/checkpoint.js';
import { signalGroup } from './executor/process-group.js';
import { killAndRemoveCgroup } from './isolation/cgroupfs.js';
import { readProcessTable } from './isolation/proc.js';

/**
 * SIGTERM-to-SIGKILL grace for orphans. Short: each was replaced elsewhere long ago (it is serving as a duplicate),
 * so there is no traffic worth draining, only a chance to flush and exit cleanly, and the agent's registration waits
 * on it.
 */
export const ORPHAN_KILL_GRACE_MS = 2_000;

/** How long to wait for SIGKILLed processes to be gone before reporting them as survivors (D state). */
const KILL_WAIT_MS = 2_000;

/** Between two looks at /proc while waiting for a group to exit. */
const POLL_MS = 20;

export interface ReapOptions {
  /** The agent's checkpoint directory, `<workDir>/checkpoints`. */
  dir: string;
  log: (line: string) => void;
  graceMs?: number;
}

/**
 * What became of one checkpoint:
 * - killed: its leader was still running and was killed with its group (and cgroups);
 * - gone: its leader had exited; whatever remained in its cgroups was killed;
 * - reused: its pid now names another process, which was left alone;
 * - kept: the agent process that launched it is still running (another agent on the same work dir), so the task
 *   is not an orphan and its checkpoint stays;
 * - invalid: the file could not be read and was removed.
 */
export type ReapOutcome = 'killed' | 'gone' | 'reused' | 'kept' | 'invalid';

export interface ReapResult {
  file: string;
  taskId?: string;
  pid?: number;
  outcome: ReapOutcome;
}

/** Handles every checkpoint in `dir`, concurrently (each may wait out a grace period). Never rejects for one task. */
export async function reapOrphans(opts: ReapOptions): Promise<ReapResult[]> {
  const graceMs = opts.graceMs ?? ORPHAN_KILL_GRACE_MS;
  const entries = await readCheckpoints(opts.dir);
  return Promise.all(
    entries.map(async (e): Promise<ReapResult> => {
      if ('problem' in e) {
        opts.log(`dropping unreadable task checkpoint ${e.file}: ${e.problem}`);
        await rm(e.file, { force: true });
        return { file: e.file, outcome: 'invalid' };
      }
      const cp = e.checkpoint;
      let outcome: ReapOutcome;
      try {
        outcome = await reapOne(cp, graceMs, opts.log);
      } catch (err) {
        // Left in place: the next start tries again.
        opts.log(`could not clean up task ${cp.taskId} (pid ${cp.leader.pid}) left by a previous run of this agent: ${err instanceof Error ? err.message : String(err)}`);
        return { file: e.file, taskId: cp.taskId, pid: cp.leader.pid, outcome: 'kept' };
      }
      if (outcome !== 'kept') await rm(e.file, { force: true });
      return { file: e.file, taskId: cp.taskId, pid: cp.leader.pid, outcome };
    }),
  );
}

async function reapOne(cp: TaskCheckpoint, graceMs: number, log: (line: string) => void): Promise<ReapOutcome> {
  const { taskId, leader } = cp;
  // This process is a previous run too when an Agent in it was stopped without killing its tasks.
  if (cp.agent.pid !== process.pid && (await isSameProcess(cp.agent))) {
    log(`task ${taskId} (pid ${leader.pid}) belongs to agent process ${cp.agent.pid}, which still runs on this work dir; leaving it`);
    return 'kept';
  }
  let outcome: ReapOutcome;
  if (await isSameProcess(leader)) {
    await killGroup(cp, graceMs);
    outcome = 'killed';
  } else {
    outcome = (await liveIdentity(leader.pid)) === undefined ? 'gone' : 'reused';
  }
  let drained = 0;
  for (const dir of cp.cgroups) if (await killAndRemoveCgroup(dir)) drained++;
  const cgroups = drained > 0 ? `, its cgroup emptied and removed` : '';
  if (outcome === 'killed') log(`killed orphaned task ${taskId} (pid ${leader.pid}) left by a previous run of this agent${cgroups}`);
  else if (outcome === 'reused') log(`task ${taskId} left by a previous run of this agent has exited; pid ${leader.pid} now belongs to another process, left alone${cgroups}`);
  else log(`task ${taskId} (pid ${leader.pid}) left by a previous run of this agent has already exited${cgroups}`);
  return outcome;
}

/**
 * SIGTERM to the group (and to the leader, in case it moved to another group), the grace period, then SIGKILL to
 * what is left. The group id cannot name anyone else meanwhile: Linux does not hand out a number that is still the
 * id of a live process or group, and the leader was verified alive just before.
 */
async function killGroup(cp: TaskCheckpoint, graceMs: number): Promise<void> {
  signal(cp, 'SIGTERM');
  if (await waitGone(cp, graceMs)) return;
  signal(cp, 'SIGKILL');
  if (await waitGone(cp, KILL_WAIT_MS)) return;
  throw new Error(`processes of group ${cp.pgid} survived SIGKILL`);
}

function signal(cp: TaskCheckpoint, sig: NodeJS.Signals): void {
  signalGroup(cp.pgid, sig);
  try {
    process.kill(cp.leader.pid, sig);
  } catch {
    // ESRCH: it exited already.
  }
}

/** Polls /proc until no live process is in the group and the leader is gone (zombies count as gone). */
async function waitGone(cp: TaskCheckpoint, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const table = await readProcessTable();
    const alive = table.some(
      (p) => (p.pgrp === cp.pgid || (p.pid === cp.leader.pid && p.startTicks === cp.leader.startTicks)) && p.state !== 'Z' && p.state !== 'X',
    );
    if (!alive) return true;
    if (Date.now() >= deadline) return false;
    await sleep(POLL_MS);
  }
}
