/**
 * The real agent against a fake master (a real WebSocket server speaking the real protobuf protocol), running real
 * child processes. Nothing here asserts on timing: every wait is a bounded poll.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import type { AgentOptions } from '../../src/agent/agent.js';
import { deriveAgentId } from '../../src/agent/agent-id.js';
import { Backoff } from '../../src/agent/backoff.js';
import { AGENT_VERSION } from '../../src/agent/connection.js';
import { isAlive } from '../../src/agent/isolation/proc.js';
import { parseOffer } from '../../src/agent/offer.js';
import { ExecutorTask, makeStatus } from '../../src/agent/task.js';
import type { TaskContext } from '../../src/agent/task.js';
import { TimerQueue, sharedTimers } from '../../src/agent/timers.js';
import { ErrorCodes, isBorealisError } from '../../src/api/errors.js';
import { taskStateFromWire, taskStateToWire } from '../../src/proto/index.js';
import type { CommandMsg, TaskInfoMsg } from '../../src/proto/index.js';
import { FakeMaster } from './fake-master.js';
import { Cleanup, freePort, makeTempDir, waitFor } from './helpers.js';

const NODE = process.execPath;

/** An HTTP server on $PORT that answers every request with what it sees of its environment. */
const SERVER =
  "require('http').createServer((q,s)=>{s.setHeader('content-type','application/json');" +
  's.end(JSON.stringify({pid:process.pid,port:process.env.PORT,port0:process.env.PORT0,port1:process.env.PORT1,' +
  'id:process.env.BOREALIS_TASK_ID,job:process.env.BOREALIS_JOB,greeting:process.env.GREETING,host:process.env.HOST}))' +
  "}).listen(+process.env.PORT,'127.0.0.1')";

const SLEEPER: CommandMsg = { shell: 'exec sleep 60' };

const cleanup = new Cleanup();
const agents: Agent[] = [];
let masters: FakeMaster[] = [];
let seq = 0;

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop({ killTasks: true });
  for (const m of masters.splice(0)) await m.close();
  await cleanup.run();
});

async function startMaster(port?: number): Promise<FakeMaster> {
  const m = await FakeMaster.start(port === undefined ? {} : { port });
  masters.push(m);
  return m;
}

interface Started {
  agent: Agent;
  lines: string[];
  workDir: string;
}

async function startAgent(master: FakeMaster, extra: Partial<AgentOptions> = {}): Promise<Started> {
  const lines: string[] = [];
  const workDir = extra.workDir ?? cleanup.dir(await makeTempDir('agent'));
  const agent = await Agent.start({
    master: master.address,
    resources: 'cpus=2,mem=1Gi,disk=5Gi,gpus=0',
    workDir,
    killGraceMs: 2_000,
    usageIntervalMs: 50,
    reconnect: { initialMs: 50, maxMs: 400 },
    logger: (line) => lines.push(line),
    ...extra,
  });
  agents.push(agent);
  return { agent, lines, workDir };
}

function taskInfo(command: CommandMsg, extra: Partial<TaskInfoMsg> = {}): TaskInfoMsg {
  return { taskId: `web-${++seq}-${process.pid}`, job: 'web', instance: 0, command, resources: { cpusMilli: 100, memMib: 128 }, ...extra };
}

async function waitStates(master: FakeMaster, taskId: string, states: string[]): Promise<void> {
  const want = states.join(' -> ');
  try {
    await waitFor(() => master.statesOf(taskId).join(' -> ') === want, `${taskId} to report ${want}`);
  } catch {
    const seen = master.updatesOf(taskId).map((r) => `${r.state}${r.status.reason ? `/${r.status.reason}` : ''}${r.status.message ? ` (${r.status.message})` : ''}`);
    throw new Error(`gave up waiting for ${taskId} to report ${want}; saw: ${seen.join(' -> ') || 'nothing'}`);
  }
}

async function runningPid(agent: Agent, taskId: string): Promise<number> {
  await waitFor(() => agent.task(taskId)?.pid !== undefined, `a pid for ${taskId}`);
  const pid = agent.task(taskId)!.pid!;
  cleanup.pid(pid);
  return pid;
}

describe('Agent: registration', () => {
  it('registers its id, host, resources in table units, port ranges, attributes and isolation, then heartbeats', async () => {
    const master = await startMaster();
    const { agent, lines, workDir } = await startAgent(master, {
      resources: 'cpus=2.5,mem=1Gi,disk=5Gi,gpus=1',
      ports: '32000,31000-31009',
      attributes: 'zone=a,rack=r1',
      advertiseIp: '127.0.0.2',
    });
    await agent.whenRegistered();
    expect(master.registrations).toHaveLength(1);
    const reg = master.registrations[0]!.register;
    expect(reg).toMatchObject({
      agentId: agent.agentId,
      hostname: os.hostname(),
      advertiseIp: '127.0.0.2',
      resources: {
        cpusMilli: 2500,
        memMib: 1024,
        diskMib: 5120,
        gpus: 1,
        ports: [
          { begin: 31000, end: 31009 },
          { begin: 32000, end: 32000 },
        ],
      },
      attributes: { zone: 'a', rack: 'r1' },
      version: AGENT_VERSION,
    });
    expect(['cgroup-v1', 'cgroup-v2', 'rss-poll']).toContain(reg.isolation);
    expect(reg.isolation).toBe(agent.isolation.name);
    expect(reg.tasks).toEqual([]);
    expect(agent.agentId).toBe(deriveAgentId(os.hostname(), workDir));
    expect(await readFile(path.join(workDir, 'agent-id'), 'utf8')).toBe(`${agent.agentId}\n`);
    expect(lines.some((l) => l.startsWith(`isolation: ${reg.isolation} (`))).toBe(true);
    expect(lines).toContain(`sandboxes: ${path.join(workDir, 'sandboxes')}`);

    await waitFor(() => master.heartbeats.length >= 2, 'two heartbeats');
    expect(master.heartbeats[1]!.seq).toBeGreaterThan(master.heartbeats[0]!.seq);

    // The id is stable: a new agent process on the same work directory registers under the same id.
    await agent.stop({ killTasks: true });
    const again = await startAgent(master, { workDir });
    await again.agent.whenRegistered();
    expect(again.agent.agentId).toBe(agent.agentId);
    expect(master.registrations[1]!.register.agentId).toBe(agent.agentId);
  });

  it('uses rss-poll when told to, and says so', async () => {
    const master = await startMaster();
    const { agent, lines } = await startAgent(master, { isolation: 'rss-poll' });
    await agent.whenRegistered();
    expect(master.registrations[0]!.register.isolation).toBe('rss-poll');
    expect(lines).toContain('isolation: rss-poll (procfs)');
  });

  it('refuses bad flags with every problem listed', async () => {
    const master = await startMaster();
    const workDir = cleanup.dir(await makeTempDir('agent'));
    const err = await Agent.start({ master: master.address, resources: 'cpus=lots,mem=1Gi,bogus=1', ports: '9-3', workDir }).catch((e: unknown) => e);
    expect(isBorealisError(err) && err.code).toBe(ErrorCodes.BAD_RESOURCES);
    const paths = isBorealisError(err) ? err.problems.map((p) => p.path) : [];
    expect(paths).toEqual(expect.arrayContaining(['resources.bogus', 'resources.cpus', 'ports']));
    const bad = await Agent.start({ master: 'http://x', resources: 'cpus=1,mem=1Gi', workDir, reconnect: { initialMs: 0 } }).catch(
      (e: unknown) => e,
    );
    expect(isBorealisError(bad) && bad.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(isBorealisError(bad) ? bad.problems.map((p) => p.path) : []).toEqual(['master', 'reconnect.initialMs']);
  });
});

describe('Agent: running tasks', () => {
  it('runs a shell HTTP server with a health check: STARTING, then RUNNING once healthy; KillTask ends it KILLED', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    const ports = [await freePort(), await freePort()];
    const info = taskInfo(
      { shell: `exec "${NODE}" -e "${SERVER}"` },
      {
        env: { GREETING: 'hello' },
        ports,
        // A whole core, and a boot window (no grace, 50 failures 100 ms apart) wide enough for node to start on a
        // loaded machine: the first passing check ends it, so it costs nothing when the machine is idle.
        resources: { cpusMilli: 1000, memMib: 256 },
        healthCheck: { path: '/health', portIndex: 0, intervalMs: 100, timeoutMs: 1_000, consecutiveFailures: 50, gracePeriodMs: 0 },
      },
    );
    master.launch(info);
    await waitStates(master, info.taskId, ['starting', 'running']);
    const running = master.updatesOf(info.taskId).find((r) => r.state === 'running')!;
    expect(running.status.healthy).toBe(true);
    expect(agent.task(info.taskId)).toMatchObject({ state: 'running', healthy: true });

    // The master (here, the test) reaches the task on its port.
    const res = await fetch(`http://127.0.0.1:${ports[0]}/`);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      port: String(ports[0]),
      port0: String(ports[0]),
      port1: String(ports[1]),
      id: info.taskId,
      job: 'web',
      greeting: 'hello',
      host: '127.0.0.1',
    });
    const pid = await runningPid(agent, info.taskId);
    expect(body.pid).toBe(pid); // the shell exec'd node: the task's leader is the server itself

    master.kill(info.taskId, 1_000);
    await waitStates(master, info.taskId, ['starting', 'running', 'killed']);
    expect(master.lastOf(info.taskId)!.status.reason).toBe('killed');
    await waitFor(() => !isAlive(pid), 'the server process to be gone');
    // Once KILLED is acknowledged the agent forgets the task.
    await waitFor(() => agent.task(info.taskId) === undefined, 'the task to be forgotten');
  });

  it('reports FINISHED for exit 0 and FAILED with the exit code for exit 3', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    const ok = taskInfo({ shell: 'exit 0' });
    const bad = taskInfo({ argv: { args: ['sh', '-c', 'exit 3'] } });
    master.launch(ok);
    master.launch(bad);
    await waitStates(master, ok.taskId, ['starting', 'running', 'finished']);
    await waitStates(master, bad.taskId, ['starting', 'running', 'failed']);
    expect(master.lastOf(ok.taskId)!.status).toMatchObject({ reason: 'exited' });
    expect(master.lastOf(ok.taskId)!.status.exitCode ?? 0).toBe(0);
    expect(master.lastOf(bad.taskId)!.status).toMatchObject({ reason: 'exited', exitCode: 3 });
    // Every update carried its own uuid and a timestamp.
    const uuids = [...master.updatesOf(ok.taskId), ...master.updatesOf(bad.taskId)].map((r) => r.status.uuid);
    expect(new Set(uuids).size).toBe(6);
    expect(master.updatesOf(ok.taskId).every((r) => (r.status.timestampMs ?? 0) > 0)).toBe(true);
  });

  it('reports FAILED / oom for a task that exceeds its memory', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    // Touches 4 MiB per tick up to 1 GiB, then exits 3: if isolation failed, the test sees exited, not a hang.
    const hog =
      'const a=[];let n=0;const t=setInterval(()=>{a.push(Buffer.alloc(4<<20,1));' +
      'if(++n>=256){clearInterval(t);setTimeout(()=>process.exit(3),5000)}},2);';
    const info = taskInfo({ argv: { args: [NODE, '-e', hog] } }, { resources: { cpusMilli: 1000, memMib: 96 } });
    master.launch(info);
    await waitFor(() => ['failed', 'finished'].includes(master.statesOf(info.taskId).at(-1) ?? ''), 'the hog to end');
    expect(master.lastOf(info.taskId)!.status).toMatchObject({ state: taskStateToWire('failed'), reason: 'oom' });
    expect(master.lastOf(info.taskId)!.status.message).toMatch(/memory limit of 96 MiB/);
  });

  it('ignores a duplicate LaunchTask for a task it runs', async () => {
    const master = await startMaster();
    const { agent, lines } = await startAgent(master);
    await agent.whenRegistered();
    const info = taskInfo(SLEEPER);
    master.launch(info);
    await waitStates(master, info.taskId, ['starting', 'running']);
    const pid = await runningPid(agent, info.taskId);
    master.launch(info);
    await waitFor(() => lines.some((l) => l.includes(`duplicate launch of task ${info.taskId}`)), 'the duplicate to be noticed');
    expect(master.statesOf(info.taskId)).toEqual(['starting', 'running']);
    expect(agent.tasks()).toHaveLength(1);
    expect(agent.task(info.taskId)!.pid).toBe(pid);
  });

  it('kills a task that never becomes healthy and reports FAILED / unhealthy', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    const info = taskInfo(SLEEPER, {
      ports: [await freePort()], // nothing will listen there
      healthCheck: { path: '/', intervalMs: 50, timeoutMs: 500, consecutiveFailures: 2, gracePeriodMs: 0 },
    });
    master.launch(info);
    const pid = await runningPid(agent, info.taskId);
    await waitStates(master, info.taskId, ['starting', 'failed']);
    expect(master.lastOf(info.taskId)!.status).toMatchObject({ reason: 'unhealthy' });
    expect(master.lastOf(info.taskId)!.status.message).toMatch(/health check failed/);
    await waitFor(() => !isAlive(pid), 'the unhealthy task to be gone');
  });

  it('answers a KillTask for a task it does not run with KILLED / unknown_task, and a launch it cannot run with FAILED', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    master.kill('never-launched');
    await waitStates(master, 'never-launched', ['killed']);
    expect(master.lastOf('never-launched')!.status.reason).toBe('unknown_task');

    master.launch({ taskId: 'no-command', job: 'web' });
    await waitStates(master, 'no-command', ['starting', 'failed']);
    expect(master.lastOf('no-command')!.status).toMatchObject({ reason: 'failed_to_start' });
    expect(master.lastOf('no-command')!.status.message).toMatch(/no command/);

    master.launch(taskInfo({ argv: { args: ['/no/such/program'] } }, { taskId: 'missing-binary' }));
    await waitStates(master, 'missing-binary', ['starting', 'failed']);
    expect(master.lastOf('missing-binary')!.status.message).toMatch(/not found/);
  });

  it('stop({ killTasks: true }) says Leaving, then kills every task and reports them LOST (agent_stopped) before closing', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    const info = taskInfo(SLEEPER);
    master.launch(info);
    await waitStates(master, info.taskId, ['starting', 'running']);
    const pid = await runningPid(agent, info.taskId);
    await agent.stop({ killTasks: true });
    expect(isAlive(pid)).toBe(false);
    expect(master.statesOf(info.taskId)).toEqual(['starting', 'running', 'lost']);
    expect(master.lastOf(info.taskId)!.status).toMatchObject({ reason: 'agent_stopped' });
    // The master heard the agent was leaving before the task's end, so it placed nothing more there meanwhile.
    const kinds = master.conns.at(-1)!.messages.map((m) => (m.leaving ? 'leaving' : m.status?.status.state === taskStateToWire('lost') ? 'lost' : 'other'));
    expect(kinds.indexOf('leaving')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('leaving')).toBeLessThan(kinds.indexOf('lost'));
    expect(agent.state).toBe('closed');
  });
});

describe('Agent: reliability', () => {
  it('resends an unacknowledged update after a reconnect, with the same uuid, and holds later ones back until then', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    const info = taskInfo(SLEEPER);
    master.shouldAck = (s) => s.taskId !== info.taskId; // withhold
    master.launch(info);
    await waitFor(() => agent.task(info.taskId)?.state === 'running', 'the task to run');
    const first = master.updatesOf(info.taskId)[0]!;
    expect(first.state).toBe('starting');
    // RUNNING is queued behind the unacknowledged STARTING: the master never sees them out of order.
    expect(agent.task(info.taskId)!.unacknowledged).toBe(2);
    expect(master.statesOf(info.taskId)).toEqual(['starting']);
    const pid = await runningPid(agent, info.taskId);

    const before = master.conns.length;
    master.dropConnections();
    await waitFor(() => master.registrations.length === 2, 're-registration');
    await waitFor(
      () => master.updatesOf(info.taskId).some((r) => r.conn.index >= before && r.status.uuid === first.status.uuid),
      'the same STARTING update on the new connection',
    );
    // The re-registration already told the truth: the task is running.
    expect(master.registrations[1]!.register.tasks).toEqual([
      expect.objectContaining({ taskId: info.taskId, state: taskStateToWire('running') }),
    ]);

    master.shouldAck = () => true;
    master.ack(first.status);
    await waitStates(master, info.taskId, ['starting', 'running']);
    await waitFor(() => agent.task(info.taskId)!.unacknowledged === 0, 'all updates acknowledged');
    expect(agent.task(info.taskId)!.pid).toBe(pid);
  });

  it('resends an unacknowledged update while connected, after the retry delay', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master, { statusRetry: { initialMs: 100, maxMs: 200 } });
    await agent.whenRegistered();
    const info = taskInfo({ shell: 'exit 0' });
    master.shouldAck = () => false;
    master.launch(info);
    await waitFor(() => master.updatesOf(info.taskId).length >= 3, 'resends');
    const uuids = new Set(master.updatesOf(info.taskId).map((r) => r.status.uuid));
    expect(uuids.size).toBe(1); // only the head (STARTING) is ever on the wire
    expect(master.conns).toHaveLength(1);
    master.shouldAck = () => true;
    master.ack(master.updatesOf(info.taskId)[0]!.status);
    await waitStates(master, info.taskId, ['starting', 'running', 'finished']);
  });

  it('keeps its tasks through a master restart, reconnects with backoff and reports them in Register.tasks', async () => {
    let master = await startMaster();
    const { agent, lines } = await startAgent(master);
    await agent.whenRegistered();
    const info = taskInfo(SLEEPER);
    master.launch(info);
    await waitStates(master, info.taskId, ['starting', 'running']);
    await waitFor(() => agent.task(info.taskId)!.unacknowledged === 0, 'acks');
    const pid = await runningPid(agent, info.taskId);

    const port = master.port;
    await master.close();
    masters = masters.filter((m) => m !== master);
    await waitFor(() => lines.filter((l) => l.startsWith('cannot register with the master')).length >= 2, 'failed reconnect attempts');
    expect(lines.some((l) => l.includes('tasks keep running'))).toBe(true);
    const attempts = lines.filter((l) => l.startsWith('cannot register')).map((l) => Number(/attempt (\d+)/.exec(l)?.[1]));
    expect(attempts.slice(0, 2)).toEqual([2, 3]); // the count grows: this is a backoff, not a fixed retry
    expect(isAlive(pid)).toBe(true);

    master = await startMaster(port);
    await waitFor(() => master.registrations.length === 1, 're-registration with the restarted master');
    expect(master.registrations[0]!.register.tasks).toEqual([
      expect.objectContaining({ taskId: info.taskId, state: taskStateToWire('running') }),
    ]);
    await agent.whenRegistered();
    expect(agent.registrations).toBe(2);
    expect(agent.task(info.taskId)!.pid).toBe(pid);
    expect(isAlive(pid)).toBe(true);
    expect(master.updatesOf(info.taskId)).toEqual([]); // not relaunched: no new STARTING
  });

  it('kills a task the master does not know when Registered lists it in kill_tasks', async () => {
    const master = await startMaster();
    const { agent } = await startAgent(master);
    await agent.whenRegistered();
    const info = taskInfo(SLEEPER);
    master.launch(info);
    await waitStates(master, info.taskId, ['starting', 'running']);
    const pid = await runningPid(agent, info.taskId);

    // As a restarted master would: everything reported that it has no record of is to be killed.
    master.killTasksFor = (reg) => (reg.tasks ?? []).map((t) => t.taskId);
    master.dropConnections();
    await waitStates(master, info.taskId, ['starting', 'running', 'killed']);
    expect(master.lastOf(info.taskId)!.status.reason).toBe('killed');
    await waitFor(() => !isAlive(pid), 'the task to be gone');
  });

  it('survives malformed frames, text frames and empty messages, and logs a ProtocolError', async () => {
    const master = await startMaster();
    const { agent, lines } = await startAgent(master);
    await agent.whenRegistered();
    master.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]));
    master.sendRaw(Buffer.from([0x0a, 0x05, 0x01])); // a length-delimited field longer than the frame
    master.sendRaw('{"launch": "not protobuf"}');
    master.sendRaw(Buffer.alloc(0));
    master.send({ error: { code: 'BRL_ERR_PROTOCOL', message: 'you sent something odd' } });
    const info = taskInfo({ shell: 'exit 0' });
    master.launch(info);
    await waitStates(master, info.taskId, ['starting', 'running', 'finished']);
    expect(lines.filter((l) => l.startsWith('ignoring a malformed frame'))).toHaveLength(2);
    expect(lines.some((l) => l.startsWith('ignoring a text frame'))).toBe(true);
    expect(lines.some((l) => l.startsWith('ignoring an empty message'))).toBe(true);
    expect(lines).toContain('protocol error from the master: BRL_ERR_PROTOCOL: you sent something odd');
    // Same connection throughout.
    expect(master.conns).toHaveLength(1);
    expect(agent.registrations).toBe(1);
  });
});

describe('Agent: sandboxes', () => {
  /** A sandbox left by an earlier task, last written `ageMs` ago. */
  async function oldSandbox(root: string, taskId: string, ageMs: number): Promise<void> {
    const dir = path.join(root, taskId);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'stdout'), 'old output\n');
    const at = new Date(Date.now() - ageMs);
    await utimes(path.join(dir, 'stdout'), at, at);
    await utimes(dir, at, at);
  }

  it('keeps ended sandboxes that are among the newest N or younger than the max age, deletes the rest when a task ends', async () => {
    const master = await startMaster();
    const HOUR = 3_600_000;
    const { agent } = await startAgent(master, { sandboxGc: { keepNewest: 2, maxAgeMs: HOUR } });
    await agent.whenRegistered();
    const root = agent.sandboxRoot;
    // A running task whose sandbox looks old (it wrote nothing for hours): in use, never collected.
    const sleeper = taskInfo(SLEEPER);
    master.launch(sleeper);
    await waitStates(master, sleeper.taskId, ['starting', 'running']);
    const hoursAgo = new Date(Date.now() - 3 * HOUR);
    await utimes(path.join(root, sleeper.taskId), hoursAgo, hoursAgo);
    await utimes(path.join(root, sleeper.taskId, 'stdout'), hoursAgo, hoursAgo);
    // Ended ones: two recent (kept by age), three old ones (only the newest of them kept by count, with the new one).
    await oldSandbox(root, 'ended-recent-1', 60_000);
    await oldSandbox(root, 'ended-recent-2', 120_000);
    await oldSandbox(root, 'ended-old-1', 2 * HOUR);
    await oldSandbox(root, 'ended-old-2', 3 * HOUR);
    await oldSandbox(root, 'ended-old-3', 4 * HOUR);
    expect(await readdir(root)).toHaveLength(6);

    const quick = taskInfo({ shell: 'echo done' });
    master.launch(quick);
    await waitStates(master, quick.taskId, ['starting', 'running', 'finished']);
    // Newest two ended: the quick task's and ended-recent-1; ended-recent-2 is young; the old ones go.
    // Deletions are asynchronous and one at a time: wait until none of the old ones is left.
    await waitFor(async () => !(await readdir(root)).some((d) => d.startsWith('ended-old-')), 'the old sandboxes collected');
    expect((await readdir(root)).sort()).toEqual([quick.taskId, 'ended-recent-1', 'ended-recent-2', sleeper.taskId].sort());
    expect(await readFile(path.join(root, quick.taskId, 'stdout'), 'utf8')).toBe('done\n');
    expect(agent.task(sleeper.taskId)?.state).toBe('running');
  });

  it('refuses bad sandbox gc options', async () => {
    const master = await startMaster();
    const workDir = cleanup.dir(await makeTempDir('agent'));
    const err = await Agent.start({
      master: master.address,
      resources: 'cpus=1,mem=1Gi',
      workDir,
      sandboxGc: { keepNewest: 1.5, maxAgeMs: -1 },
    }).catch((e: unknown) => e);
    expect(isBorealisError(err) ? err.problems.map((p) => p.path) : []).toEqual(['sandboxGc.keepNewest', 'sandboxGc.maxAgeMs']);
  });
});

describe('agent building blocks', () => {
  it('reports a launched task that has produced no status yet as STAGING in Register.tasks, then its latest status', () => {
    const reports: string[] = [];
    const ctx: TaskContext = {
      workDir: os.tmpdir(),
      isolator: undefined as unknown as TaskContext['isolator'], // never reached: the task is not started
      timers: sharedTimers,
      killGraceMs: 1_000,
      usageIntervalMs: 1_000,
      capacity: { cpusMilli: 1000, memMib: 1024 },
      baseEnv: {},
      report: (_task, fields) => reports.push(fields.state),
      log: () => undefined,
    };
    const info = taskInfo(SLEEPER);
    const t = new ExecutorTask(info, ctx);
    // Told to launch, nothing reported: the master must still hear of it, or it would call it lost.
    expect(t.latest).toMatchObject({ taskId: info.taskId, state: taskStateToWire('staging') });
    expect(taskStateFromWire(t.latest.state)).toBe('staging');
    expect(t.latest.uuid).toBe(''); // not an update: nothing to acknowledge
    const starting = makeStatus(info.taskId, { state: 'starting' }, 'u-1', Date.now());
    t.last = starting;
    expect(t.latest).toBe(starting);
    expect(reports).toEqual([]);
  });

  it('parses the offer flags into table units', () => {
    expect(parseOffer('cpus=4,mem=8Gi,disk=20Gi,gpus=0,ports=8000-8010,31000-32000', undefined, 'zone=a,rack=r1')).toEqual({
      resources: {
        cpusMilli: 4000,
        memMib: 8192,
        diskMib: 20480,
        gpus: 0,
        ports: [
          { begin: 8000, end: 8010 },
          { begin: 31000, end: 32000 },
        ],
      },
      attributes: { zone: 'a', rack: 'r1' },
    });
    expect(parseOffer('cpus=1,mem=512Mi').resources.ports).toEqual([{ begin: 31000, end: 32000 }]);
    expect(() => parseOffer('cpus=1,mem=1Gi,ports=1-2', '3-4')).toThrow(/given both/);
    expect(() => parseOffer('disk=1Gi')).toThrow(/neither cpus nor mem/);
  });

  it('backs off exponentially, with jitter in [d/2, d], capped, and resets', () => {
    const lows = new Backoff({ initialMs: 100, maxMs: 1_000 }, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(() => lows.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const highs = new Backoff({ initialMs: 100, maxMs: 1_000 }, () => 1);
    expect([1, 2, 3, 4, 5].map(() => highs.next())).toEqual([100, 200, 400, 800, 1_000]);
    highs.reset();
    expect(highs.next()).toBe(100);
    expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(/maxMs/);
  });

  it('fires shared timers in deadline order and skips cancelled ones', async () => {
    const q = new TimerQueue();
    const fired: string[] = [];
    q.after(30, () => fired.push('c'));
    q.after(10, () => fired.push('a'));
    const cancelled = q.after(20, () => fired.push('x'));
    q.after(20, () => fired.push('b'));
    cancelled.cancel();
    expect(q.size).toBe(3);
    await waitFor(() => q.size === 0, 'all timers');
    expect(fired).toEqual(['a', 'b', 'c']);
  });
});
