/**
 * Tasks left running by an agent process that died: the executor checkpoints each task's process identity, and
 * the next start of an agent on the same work dir kills those that are still the checkpointed process (same pid,
 * same start time) before it registers. Real processes throughout; every wait is a bounded poll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import {
  CHECKPOINT_DIR,
  checkpointFile,
  parseCheckpoint,
  readCheckpoints,
  selfIdentity,
  writeCheckpoint,
} from '../../src/agent/executor/checkpoint.js';
import type { TaskCheckpoint } from '../../src/agent/executor/checkpoint.js';
import { TaskRunner } from '../../src/agent/executor/task-runner.js';
import { detectIsolator } from '../../src/agent/isolation/detect.js';
import type { Detection } from '../../src/agent/isolation/detect.js';
import { type ProcessIdentity, isAlive, liveIdentity } from '../../src/agent/isolation/proc.js';
import { reapOrphans } from '../../src/agent/orphan-reaper.js';
import { FakeMaster } from './fake-master.js';
import { type AgentProc, Cleanup, makeTempDir, spawnAgent, stopAgents, waitFor } from './helpers.js';

const NODE = process.execPath;
/**
 * Task ports below Linux's ephemeral range (32768-60999), where other suites' listen(0) sockets land, and away
 * from the e2e suite's 17000+ and `borealis up`'s first agents (20000+).
 */
const TASK_PORTS = { begin: 26_000, end: 26_099 };

/** An HTTP server on $PORT answering with its pid: proof that the process behind the port is the task. */
const SERVER = "require('http').createServer((q,s)=>s.end(String(process.pid))).listen(+process.env.PORT,'127.0.0.1')";

const cleanup = new Cleanup();
let detection: Detection;
let root: string;
let seq = 0;

beforeAll(async () => {
  detection = await detectIsolator({ agentId: `test-orphans-${process.pid}` });
  root = cleanup.dir(await makeTempDir('orphans'));
});

afterAll(async () => {
  await cleanup.run();
  await detection?.isolator.close();
});

/** A detached `sleep`, in its own process group (so a wrong group kill could only ever hit it). */
async function sleeper(): Promise<ProcessIdentity> {
  const child = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid!;
  cleanup.pid(pid);
  let id: ProcessIdentity | undefined;
  await waitFor(async () => (id = await liveIdentity(pid)) !== undefined, `sleep ${pid} to start`);
  return id!;
}

async function checkpointOf(leader: ProcessIdentity, extra: Partial<TaskCheckpoint> = {}): Promise<TaskCheckpoint> {
  return {
    version: 1,
    taskId: `orphan-${++seq}-${process.pid}`,
    leader,
    pgid: leader.pid,
    cgroups: [],
    // This process: an earlier Agent in it counts as a previous run (it was stopped without killing its tasks).
    agent: await selfIdentity(),
    launchedAtMs: Date.now(),
    ...extra,
  };
}

describe('reapOrphans', () => {
  it('kills a checkpointed task whose leader is still the same process, and drops its checkpoint', async () => {
    const dir = path.join(root, `cp-${++seq}`);
    const leader = await sleeper();
    const cp = await checkpointOf(leader);
    await writeCheckpoint(dir, cp);
    const lines: string[] = [];
    const results = await reapOrphans({ dir, log: (l) => lines.push(l) });
    expect(results.map((r) => [r.taskId, r.outcome])).toEqual([[cp.taskId, 'killed']]);
    expect(isAlive(leader.pid)).toBe(false);
    expect(lines).toEqual([`killed orphaned task ${cp.taskId} (pid ${leader.pid}) left by a previous run of this agent`]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('does not kill a process that now has the checkpointed pid but another start time', async () => {
    const dir = path.join(root, `cp-${++seq}`);
    const stranger = await sleeper();
    // The checkpointed leader had this pid once, but started earlier: the pid was recycled.
    const cp = await checkpointOf({ pid: stranger.pid, startTicks: stranger.startTicks - 1 });
    await writeCheckpoint(dir, cp);
    const lines: string[] = [];
    const results = await reapOrphans({ dir, log: (l) => lines.push(l), graceMs: 0 });
    expect(results.map((r) => r.outcome)).toEqual(['reused']);
    expect(isAlive(stranger.pid)).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`pid ${stranger.pid} now belongs to another process, left alone`);
    expect(await readdir(dir)).toEqual([]);
  });

  it('drops the checkpoint of a task that has exited, and unreadable or half-written files', async () => {
    const dir = path.join(root, `cp-${++seq}`);
    const gone = await sleeper();
    process.kill(gone.pid, 'SIGKILL');
    await waitFor(() => !isAlive(gone.pid), 'the sleep to die');
    const cp = await checkpointOf(gone);
    await writeCheckpoint(dir, cp);
    await writeFile(path.join(dir, 'garbled.json'), '{"version":1,');
    await writeFile(path.join(dir, 'x.json.tmp'), '{');
    // A damaged record must never point the reaper at a hierarchy's root.
    const rootCgroup = { ...(await checkpointOf(await sleeper())), cgroups: ['/sys/fs/cgroup/memory'] };
    await writeFile(checkpointFile(dir, rootCgroup.taskId), JSON.stringify(rootCgroup));
    const lines: string[] = [];
    const results = await reapOrphans({ dir, log: (l) => lines.push(l) });
    expect(results.map((r) => r.outcome).sort()).toEqual(['gone', 'invalid', 'invalid', 'invalid']);
    expect(isAlive(rootCgroup.leader.pid)).toBe(true);
    expect(lines).toContain(`task ${cp.taskId} (pid ${gone.pid}) left by a previous run of this agent has already exited`);
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves the tasks of an agent process that still runs on the same work dir', async () => {
    const dir = path.join(root, `cp-${++seq}`);
    const task = await sleeper();
    const otherAgent = await sleeper();
    const cp = await checkpointOf(task, { agent: otherAgent });
    await writeCheckpoint(dir, cp);
    const results = await reapOrphans({ dir, log: () => undefined });
    expect(results.map((r) => r.outcome)).toEqual(['kept']);
    expect(isAlive(task.pid)).toBe(true);
    expect(await readdir(dir)).toEqual([path.basename(checkpointFile(dir, cp.taskId))]);
  });

  it('empties a checkpointed cgroup, reaching a process that left the task group, once the leader is gone', async (ctx) => {
    if (detection.name === 'rss-poll') ctx.skip(); // no cgroups on this machine
    const dir = path.join(root, `cp-${++seq}`);
    const escaped = await sleeper(); // its own group: only the cgroup ties it to the task
    const taskId = `orphan-cg-${++seq}-${process.pid}`;
    const handle = await detection.isolator.prepare(taskId, { memMiB: 64, cpusMilli: 100 });
    await detection.isolator.attach(handle, escaped.pid);
    const gone = await sleeper();
    process.kill(gone.pid, 'SIGKILL');
    await waitFor(() => !isAlive(gone.pid), 'the leader to die');
    await writeCheckpoint(dir, await checkpointOf(gone, { taskId, cgroups: [...handle.dirs!] }));
    const lines: string[] = [];
    await reapOrphans({ dir, log: (l) => lines.push(l) });
    expect(isAlive(escaped.pid)).toBe(false);
    for (const d of handle.dirs!) expect(existsSync(d)).toBe(false);
    expect(lines).toEqual([`task ${taskId} (pid ${gone.pid}) left by a previous run of this agent has already exited, its cgroup emptied and removed`]);
    await detection.isolator.destroy(handle);
  });
});

describe('TaskRunner checkpoints', () => {
  it('records the leader before the command runs and removes the record once the task has ended', async () => {
    const dir = path.join(root, `cp-${++seq}`);
    const taskId = `cp-runner-${++seq}-${process.pid}`;
    const r = cleanup.runner(
      new TaskRunner(
        { taskId, job: 'j', command: { argv: ['sleep', '600'] }, limits: { memMiB: 64, cpusMilli: 100 } },
        { workDir: path.join(root, 'sandboxes'), isolator: detection.isolator, checkpointDir: dir, usageIntervalMs: 50 },
      ),
    );
    await r.start();
    expect(r.state).toBe('running');
    const cp = parseCheckpoint(await readFile(checkpointFile(dir, taskId), 'utf8'), taskId);
    expect(cp.leader).toEqual(await liveIdentity(r.pid!));
    expect(cp.pgid).toBe(r.pid);
    expect(cp.agent).toEqual(await selfIdentity());
    expect(cp.cgroups.length > 0).toBe(detection.name !== 'rss-poll');
    await r.kill('killed', { gracePeriodMs: 0 });
    expect(existsSync(checkpointFile(dir, taskId))).toBe(false);
  });
});

describe('a real agent process SIGKILLed under a running task', () => {
  const procs: AgentProc[] = [];
  let master: FakeMaster | undefined;
  let workDir = '';

  afterAll(async () => {
    await stopAgents(procs);
    await master?.close();
    // When the test failed before the restart cleared them: the task and its cgroup (which a SIGKILLed agent leaves
    // behind), before the work dir holding its checkpoint goes. The task's pid is also killed by cleanup.run().
    if (workDir !== '') {
      const dir = path.join(workDir, CHECKPOINT_DIR);
      const left = (await readCheckpoints(dir)).flatMap((e) => ('checkpoint' in e ? e.checkpoint.cgroups : []));
      await reapOrphans({ dir, log: () => undefined, graceMs: 0 });
      for (const cg of left) await rmdir(path.dirname(cg)).catch(() => undefined); // the dead agent's root, if empty
    }
    await cleanup.run();
  });

  function startAgent(): AgentProc {
    const a = spawnAgent(
      ['--master', master!.address, '--resources', 'cpus=1,mem=512Mi,disk=1Gi,gpus=0', '--ports', `${TASK_PORTS.begin}-${TASK_PORTS.end}`, '--advertise-ip', '127.0.0.1', '--work-dir', workDir],
      cleanup,
    );
    procs.push(a);
    return a;
  }

  it('is cleaned up by the next run of the agent on the same work dir, before it registers', async () => {
    master = await FakeMaster.start();
    workDir = cleanup.dir(await makeTempDir('orphan-agent'));
    const port = await freeTaskPort();
    const first = startAgent();
    await waitFor(() => master!.registrations.length === 1, 'the agent to register', 30_000);
    const agentId = master.registrations[0]!.register.agentId;

    const taskId = `web-orphan-${process.pid}`;
    master.launch({ taskId, job: 'web', instance: 0, command: { argv: { args: [NODE, '-e', SERVER] } }, resources: { cpusMilli: 100, memMib: 128 }, ports: [port] });
    await waitFor(() => master!.statesOf(taskId).includes('running'), `${taskId} running`);
    let pid = 0;
    await waitFor(async () => (pid = await answer(port).catch(() => 0)) > 0, 'the task to listen');
    cleanup.pid(pid);

    first.child.kill('SIGKILL');
    await first.exited;
    // What QA saw: nothing supervises the task any more, and it still serves on its port.
    expect(isAlive(pid)).toBe(true);
    expect(await answer(port)).toBe(pid);

    const second = startAgent();
    await waitFor(() => master!.registrations.length === 2, 'the agent to register again', 30_000);
    const register = master.registrations[1]!.register;
    expect(register.agentId).toBe(agentId);
    expect(register.tasks ?? []).toEqual([]);
    expect(isAlive(pid)).toBe(false);
    await expect(answer(port)).rejects.toThrow();
    const line = `killed orphaned task ${taskId} (pid ${pid}) left by a previous run of this agent`;
    const at = second.log.findIndex((l) => l.endsWith(line) || l.includes(`${line},`));
    expect(at, second.log.join('\n')).toBeGreaterThanOrEqual(0);
    expect(at).toBeLessThan(second.log.findIndex((l) => l.includes('connecting to the master')));
    expect(await readdir(path.join(workDir, CHECKPOINT_DIR))).toEqual([]);
  });
});

/** GET / of the task: the pid of the process serving the port. */
async function answer(port: number): Promise<number> {
  return Number(await (await fetch(`http://127.0.0.1:${port}/`)).text());
}

/** The first port of TASK_PORTS that nothing on this machine listens on now. */
async function freeTaskPort(): Promise<number> {
  for (let port = TASK_PORTS.begin; port <= TASK_PORTS.end; port++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(`no free port in ${TASK_PORTS.begin}-${TASK_PORTS.end}`);
}
