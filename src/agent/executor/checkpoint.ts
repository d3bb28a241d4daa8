/**
 * Task checkpoints: what a later run of the agent needs to find a task's processes after the agent process died
 * (SIGKILL, OOM kill, crash). Tasks run detached, so they outlive the agent, re-parented to init, still serving and
 * holding their ports, while the master declares them lost and runs replacements elsewhere. Mesos' agent
 * checkpoints the same facts in its meta directory for the same reason.
 *
 * One small JSON file per task, `<agent workDir>/checkpoints/<taskId>.json`: outside the sandbox, which the task
 * itself can write, so that a task cannot choose what the agent will later kill. It is written before the task's
 * command runs (so no task ever runs unrecorded) and removed once the task has ended and its isolation is gone.
 * Written aside and renamed, so an agent killed mid-write leaves a whole record or none; never fsync'd, because
 * what it guards against is the agent process dying, which the page cache survives (a machine crash takes the
 * tasks with it).
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkTaskId } from '../isolation/limits.js';
import { type ProcessIdentity, liveIdentity } from '../isolation/proc.js';

/** The checkpoint directory's name under the agent's work dir. */
export const CHECKPOINT_DIR = 'checkpoints';

const SUFFIX = '.json';
const TMP_SUFFIX = '.json.tmp';
const VERSION = 1;

export interface TaskCheckpoint {
  version: typeof VERSION;
  taskId: string;
  /** The task's leader: the launch trampoline, which execs the task's command (same pid, same start time). */
  leader: ProcessIdentity;
  /** The leader's process group; the leader's pid, since tasks are spawned detached (see process-group.ts). */
  pgid: number;
  /** The task's cgroup directories, empty under rss-poll. */
  cgroups: string[];
  /** The agent process that launched it: a checkpoint whose agent process still runs is not an orphan. */
  agent: ProcessIdentity;
  launchedAtMs: number;
}

/** A file of the checkpoint directory: a checkpoint, or why it could not be read. */
export type CheckpointEntry = { file: string; checkpoint: TaskCheckpoint } | { file: string; problem: string };

export function checkpointFile(dir: string, taskId: string): string {
  return path.join(dir, `${checkTaskId(taskId)}${SUFFIX}`);
}

export async function writeCheckpoint(dir: string, cp: TaskCheckpoint): Promise<void> {
  const file = checkpointFile(dir, cp.taskId);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `${cp.taskId}${TMP_SUFFIX}`);
  await writeFile(tmp, `${JSON.stringify(cp)}\n`);
  await rename(tmp, file);
}

export async function removeCheckpoint(dir: string, taskId: string): Promise<void> {
  await rm(checkpointFile(dir, taskId), { force: true });
}

/**
 * Every checkpoint in `dir` (none when it does not exist), and the half-written `.tmp` files of an agent killed
 * mid-write (reported as problems, so that the caller removes them).
 */
export async function readCheckpoints(dir: string): Promise<CheckpointEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: CheckpointEntry[] = [];
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    if (name.endsWith(TMP_SUFFIX)) {
      out.push({ file, problem: 'written only in part' });
    } else if (name.endsWith(SUFFIX)) {
      try {
        out.push({ file, checkpoint: parseCheckpoint(await readFile(file, 'utf8'), name.slice(0, -SUFFIX.length)) });
      } catch (err) {
        out.push({ file, problem: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return out;
}

/**
 * Checks a checkpoint field by field: it names processes to kill and cgroups to empty, so anything odd is refused
 * rather than acted on. A cgroup must be an absolute path ending in the task's own id, which keeps a damaged file
 * from pointing the agent at a hierarchy's root.
 */
export function parseCheckpoint(text: string, expectTaskId?: string): TaskCheckpoint {
  const v = JSON.parse(text) as Partial<TaskCheckpoint> | null;
  if (v === null || typeof v !== 'object') throw new Error('not a JSON object');
  if (v.version !== VERSION) throw new Error(`unknown version ${JSON.stringify(v.version)}`);
  if (typeof v.taskId !== 'string') throw new Error('no taskId');
  checkTaskId(v.taskId);
  if (expectTaskId !== undefined && v.taskId !== expectTaskId) throw new Error(`holds task ${v.taskId}, not ${expectTaskId}`);
  if (!isIdentity(v.leader)) throw new Error('bad leader');
  if (!isIdentity(v.agent)) throw new Error('bad agent');
  if (!isPid(v.pgid)) throw new Error('bad pgid');
  if (!Array.isArray(v.cgroups)) throw new Error('bad cgroups');
  for (const dir of v.cgroups) {
    if (typeof dir !== 'string' || !path.isAbsolute(dir) || path.normalize(dir) !== dir || path.basename(dir) !== v.taskId) {
      throw new Error(`bad cgroup ${JSON.stringify(dir)}`);
    }
  }
  return {
    version: VERSION,
    taskId: v.taskId,
    leader: { pid: v.leader.pid, startTicks: v.leader.startTicks },
    pgid: v.pgid,
    cgroups: [...v.cgroups],
    agent: { pid: v.agent.pid, startTicks: v.agent.startTicks },
    launchedAtMs: typeof v.launchedAtMs === 'number' ? v.launchedAtMs : 0,
  };
}

let self: Promise<ProcessIdentity> | undefined;

/** This agent process, read once. */
export function selfIdentity(): Promise<ProcessIdentity> {
  self ??= liveIdentity(process.pid).then((id) => {
    if (id === undefined) throw new Error('/proc/self/stat is not readable');
    return id;
  });
  self.catch(() => {
    self = undefined; // let a later launch try again
  });
  return self;
}

function isPid(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) > 1;
}

function isIdentity(v: unknown): v is ProcessIdentity {
  if (v === null || typeof v !== 'object') return false;
  const id = v as Partial<ProcessIdentity>;
  return isPid(id.pid) && Number.isSafeInteger(id.startTicks) && (id.startTicks as number) >= 0;
}
