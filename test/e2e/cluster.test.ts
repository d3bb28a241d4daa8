/**
 * The end-to-end tests with real processes on 127.0.0.1: an in-process master with its HTTP API, three
 * `borealis agent` child processes (through tsx, so no build is needed), and the demo service's real HTTP servers.
 * One story, in order, because each step starts from the cluster the last one left: submit, kill a task process,
 * SIGKILL an agent, restart the master under running agents, run a batch job.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoServiceSpec } from '../../src/cli/demo.js';
import type { TaskView } from '../../src/master/types.js';
import { apiFixture, waitFor } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');
const MASTER_OPTS = { heartbeatTimeoutMs: 1_500, heartbeatIntervalMs: 300, restartBackoffMs: 100, reconcileGraceMs: 10_000 };
/**
 * Below Linux's ephemeral range (32768-60999), where other tests' listen(0) sockets land, and away from `borealis
 * up`'s 20000-31999 so a developer's running cluster does not collide with the test.
 */
const PORT_BASE = 17_000;

interface AgentProc {
  id: string;
  child: ChildProcess;
  log: string[];
  exited: Promise<void>;
}

const agents: AgentProc[] = [];
/** Task processes orphaned by the SIGKILLed agent (nothing supervises them any more): killed at the end. */
const orphans = new Set<number>();

afterAll(async () => {
  await Promise.all(
    agents.map(async (a) => {
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM');
      const t = setTimeout(() => a.child.kill('SIGKILL'), 10_000);
      await a.exited;
      clearTimeout(t);
    }),
  );
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function startAgent(addr: string, i: number, workRoot: string): AgentProc {
  const id = `e2e-agent-${i}`;
  const child = spawn(
    process.execPath,
    [
      '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'agent',
      '--master', addr,
      '--agent-id', id,
      '--resources', 'cpus=2,mem=2Gi,disk=4Gi,gpus=0',
      '--ports', `${PORT_BASE + i * 100}-${PORT_BASE + i * 100 + 99}`,
      '--attributes', `zone=${'abc'[i]}`,
      '--advertise-ip', '127.0.0.1',
      '--work-dir', join(workRoot, `agent-${i}`),
      '--isolation', 'rss-poll',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const a = { id, child, log, exited };
  agents.push(a);
  return a;
}

async function api(addr: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(`http://${addr}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/** GET / of a demo instance: its task id and pid, proving the process behind the endpoint answers. */
async function hello(endpoint: string): Promise<{ taskId: string; pid: number }> {
  const text = await (await fetch(`http://${endpoint}/`)).text();
  const m = /^hello from (\S+) at (\S+) \(pid (\d+)\)/.exec(text);
  if (!m) throw new Error(`unexpected answer from ${endpoint}: ${text}`);
  expect(m[2]).toBe(endpoint);
  return { taskId: m[1], pid: Number(m[3]) };
}

const running = (tasks: TaskView[]): TaskView[] => tasks.filter((t) => t.state === 'running');

describe('a real cluster on one machine', () => {
  it('runs the demo service, survives task and agent deaths and a master restart, and runs a batch job', async () => {
    const dataDir = await fx.tempDir();
    const workRoot = await fx.tempDir();
    let { master, api: server, addr } = await fx.start({ dataDir, ...MASTER_OPTS });
    for (let i = 0; i < 3; i++) startAgent(addr, i, workRoot);
    await waitFor(() => master.listAgents().filter((a) => a.state === 'up').length === 3, 'three agents registered', 30_000);

    // --- submit the demo service: every instance running and answering on its port
    const spec = demoServiceSpec();
    await api(addr, 'POST', '/v1/jobs', spec);
    const tasksOf = async (): Promise<TaskView[]> => (await api(addr, 'GET', '/v1/tasks?job=demo-service')).tasks;
    await waitFor(async () => running(await tasksOf()).length === 3, 'three demo instances running');
    const pids = new Map<string, number>();
    for (const t of running(await tasksOf())) {
      const h = await hello(t.endpoint!);
      expect(h.taskId).toBe(t.id);
      pids.set(t.id, h.pid);
    }

    // --- kill a task process: the instance is restarted as a new attempt that answers again
    const victim = running(await tasksOf()).find((t) => t.instance === 0)!;
    process.kill(pids.get(victim.id)!, 'SIGKILL');
    const replacement = await waitFor(async () => {
      const t = running(await tasksOf()).find((x) => x.instance === 0);
      return t && t.id !== victim.id ? t : undefined;
    }, 'instance 0 restarted');
    expect((await api(addr, 'GET', `/v1/tasks/${victim.id}`)).state).toBe('failed');
    expect(replacement.attempt).toBe(victim.attempt + 1);
    pids.set(replacement.id, (await hello(replacement.endpoint!)).pid);

    // --- SIGKILL an agent that runs instances: they are lost and run again on the others
    const current = running(await tasksOf());
    const doomedId = current[0].agentId!;
    const doomed = agents.find((a) => a.id === doomedId)!;
    const lostTasks = current.filter((t) => t.agentId === doomedId);
    for (const t of lostTasks) orphans.add(pids.get(t.id)!);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    await waitFor(() => master.listAgents().find((a) => a.id === doomedId)?.state === 'lost', 'the agent declared lost');
    for (const t of lostTasks) expect((await api(addr, 'GET', `/v1/tasks/${t.id}`)).state).toBe('lost');
    await waitFor(async () => {
      const r = running(await tasksOf());
      return r.length === 3 && r.every((t) => t.agentId !== doomedId);
    }, 'three instances running on the surviving agents');
    for (const t of running(await tasksOf())) {
      if (!pids.has(t.id)) pids.set(t.id, (await hello(t.endpoint!)).pid);
      else expect((await hello(t.endpoint!)).pid).toBe(pids.get(t.id));
    }

    // --- restart the master under the running agents: every job back, nothing launched twice
    const before = (await api(addr, 'GET', '/v1/tasks')).tasks as TaskView[];
    const port = server.address.port;
    await fx.stop(master, server);
    ({ master, api: server, addr } = await fx.start({ dataDir, ...MASTER_OPTS }, { port }));
    expect(master.listJobs().map((j) => j.name)).toEqual(['demo-service']);
    const live = agents.filter((a) => a !== doomed);
    await waitFor(() => live.every((a) => master.listAgents().find((x) => x.id === a.id)?.state === 'up'), 'agents re-registered', 30_000);
    await waitFor(async () => running(await tasksOf()).length === 3, 'three instances running after the restart');
    // Same tasks, same states, same processes: reconciliation kept them, it did not relaunch them.
    const after = (await api(addr, 'GET', '/v1/tasks')).tasks as TaskView[];
    expect(after.map((t) => [t.id, t.state])).toEqual(before.map((t) => [t.id, t.state]));
    for (const t of running(after)) expect((await hello(t.endpoint!)).pid).toBe(pids.get(t.id));
    for (const a of agents) {
      const launches = a.log.filter((l) => l.includes('launching task')).map((l) => /launching task (\S+)/.exec(l)![1]);
      expect(new Set(launches).size, `${a.id} launched a task twice`).toBe(launches.length);
    }

    // --- a batch job runs to completion
    await api(addr, 'POST', '/v1/jobs', { name: 'batch', type: 'batch', instances: 3, command: 'exit 0', resources: { cpus: 0.1, mem: 16 } });
    await waitFor(async () => (await api(addr, 'GET', '/v1/jobs/batch')).state === 'finished', 'the batch job finished');
    const batch = (await api(addr, 'GET', '/v1/tasks?job=batch')).tasks as TaskView[];
    expect(batch.map((t) => [t.instance, t.state, t.exitCode])).toEqual([
      [0, 'finished', 0],
      [1, 'finished', 0],
      [2, 'finished', 0],
    ]);

    // --- stopping the agents kills their tasks (the afterAll does it; here we check it happens)
    const survivors = running(await tasksOf());
    for (const a of live) a.child.kill('SIGTERM');
    await Promise.all(live.map((a) => a.exited));
    for (const t of survivors) await expect(fetch(`http://${t.endpoint}/`)).rejects.toThrow();
  });
});
