/** Simulated agents against the fake master: the real protocol over real sockets, no processes. */
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedAgent, startSimulatedAgents } from '../../src/agent/simulated.js';
import type { SimulatedFleet } from '../../src/agent/simulated.js';
import { taskStateToWire } from '../../src/proto/index.js';
import type { TaskInfoMsg } from '../../src/proto/index.js';
import { FakeMaster } from './fake-master.js';
import { waitFor } from './helpers.js';

const masters: FakeMaster[] = [];
const fleets: SimulatedFleet[] = [];
const singles: SimulatedAgent[] = [];

afterEach(async () => {
  for (const f of fleets.splice(0)) await f.stop();
  for (const a of singles.splice(0)) await a.stop();
  for (const m of masters.splice(0)) await m.close();
});

async function startMaster(heartbeatIntervalMs = 500): Promise<FakeMaster> {
  const m = await FakeMaster.start({ heartbeatIntervalMs });
  masters.push(m);
  return m;
}

function task(taskId: string, extra: Partial<TaskInfoMsg> = {}): TaskInfoMsg {
  return { taskId, job: 'sim', command: { shell: 'true' }, resources: { cpusMilli: 500, memMib: 256 }, ...extra };
}

function sim(master: FakeMaster, agentId: string, extra: Partial<Parameters<typeof SimulatedAgent.start>[0]> = {}): SimulatedAgent {
  const a = SimulatedAgent.start({
    master: master.address,
    agentId,
    resources: 'cpus=4,mem=8Gi',
    reconnect: { initialMs: 20, maxMs: 100 },
    ...extra,
  });
  singles.push(a);
  return a;
}

describe('SimulatedAgent', () => {
  it('200 simulated agents register, and each launched task goes STARTING -> RUNNING', async () => {
    const master = await startMaster();
    const fleet = await startSimulatedAgents(200, { master: master.address });
    fleets.push(fleet);
    expect(fleet.agents).toHaveLength(200);
    const ids = new Set(master.registrations.map((r) => r.register.agentId));
    expect(ids.size).toBe(200);
    expect(ids.has('sim-000') && ids.has('sim-199')).toBe(true);

    // Every zone gets every size.
    const combos = new Set(master.registrations.map((r) => `${r.register.attributes?.zone}/${r.register.attributes?.size}`));
    expect(combos.size).toBe(9);
    const first = master.registrations.find((r) => r.register.agentId === 'sim-000')!.register;
    expect(first).toMatchObject({
      isolation: 'simulated',
      resources: { cpusMilli: 4000, memMib: 8192, ports: [{ begin: 31000, end: 32000 }] },
      attributes: { zone: 'a', size: 'small' },
      tasks: [],
    });

    for (const a of fleet.agents) master.launch(task(`t-${a.agentId}`), master.conn(a.agentId));
    await waitFor(
      () => fleet.agents.every((a) => master.statesOf(`t-${a.agentId}`).join() === 'starting,running'),
      'every task to be running',
    );
    await waitFor(() => fleet.agents.every((a) => a.unacknowledged === 0), 'every update acknowledged');
    expect(fleet.agents.reduce((n, a) => n + a.running, 0)).toBe(200);

    // Kill one task on every other agent.
    for (const a of fleet.agents.filter((_, i) => i % 2 === 0)) master.kill(`t-${a.agentId}`, undefined, master.conn(a.agentId));
    await waitFor(
      () => fleet.agents.filter((_, i) => i % 2 === 0).every((a) => master.statesOf(`t-${a.agentId}`).at(-1) === 'killed'),
      'the killed tasks',
    );
    expect(fleet.agents.reduce((n, a) => n + a.running, 0)).toBe(100);
    // Heartbeats carry usage of the running ones.
    await waitFor(() => master.heartbeats.length >= 200, 'heartbeats');
  });

  it('follows its behaviour: delayed RUNNING, FINISHED or FAILED after a run time, KILLED on kill', async () => {
    const master = await startMaster(100);
    const a = sim(master, 'behave', {
      behavior: (t) =>
        t.taskId === 'ends-ok'
          ? { startDelayMs: 30, runMs: 30 }
          : t.taskId === 'ends-bad'
            ? { runMs: 20, outcome: 'failed', exitCode: 7 }
            : {},
    });
    await a.whenRegistered();
    master.launch(task('ends-ok'));
    master.launch(task('ends-bad'));
    master.launch(task('forever', { healthCheck: { path: '/health' } }));
    master.launch(task('forever')); // duplicate: ignored
    await waitFor(() => master.statesOf('ends-ok').join() === 'starting,running,finished', 'ends-ok');
    await waitFor(() => master.statesOf('ends-bad').join() === 'starting,running,failed', 'ends-bad');
    expect(master.lastOf('ends-bad')!.status).toMatchObject({ reason: 'exited', exitCode: 7 });
    await waitFor(() => master.statesOf('forever').join() === 'starting,running', 'forever');
    expect(master.updatesOf('forever').find((r) => r.state === 'running')!.status.healthy).toBe(true);
    expect(a.launched).toBe(3);

    master.kill('forever');
    await waitFor(() => master.statesOf('forever').join() === 'starting,running,killed', 'killed');
    master.kill('nobody');
    await waitFor(() => master.statesOf('nobody').join() === 'killed', 'unknown kill');
    expect(master.lastOf('nobody')!.status.reason).toBe('unknown_task');
    await waitFor(() => a.taskPhase('forever') === undefined, 'acknowledged terminal tasks to be forgotten');
  });

  it('re-registers after losing the master with its tasks, resends what was not acknowledged, and obeys kill_tasks', async () => {
    const master = await startMaster(100);
    const a = sim(master, 'resilient');
    await a.whenRegistered();
    master.launch(task('keep'));
    master.launch(task('drop'));
    await waitFor(() => master.statesOf('keep').join() === 'starting,running', 'keep running');
    await waitFor(() => master.statesOf('drop').join() === 'starting,running', 'drop running');
    await waitFor(() => a.unacknowledged === 0, 'acks');

    // A task launched while acks are withheld: its STARTING must come again after the reconnect.
    master.shouldAck = (s) => s.taskId !== 'late';
    master.launch(task('late'));
    await waitFor(() => master.updatesOf('late').length === 1, 'late STARTING');
    const uuid = master.updatesOf('late')[0]!.status.uuid;

    master.shouldAck = () => true;
    master.killTasksFor = () => ['drop'];
    master.dropConnections();
    await waitFor(() => master.registrations.length === 2, 're-registration');
    const tasks = master.registrations[1]!.register.tasks ?? [];
    expect(tasks.map((t) => [t.taskId, t.state]).sort()).toEqual([
      ['drop', taskStateToWire('running')],
      ['keep', taskStateToWire('running')],
      ['late', taskStateToWire('running')],
    ]);
    await waitFor(() => master.updatesOf('late').filter((r) => r.status.uuid === uuid).length === 2, 'the resent STARTING');
    await waitFor(() => master.statesOf('late').join() === 'starting,running', 'late running');
    await waitFor(() => master.statesOf('drop').join() === 'starting,running,killed', 'drop killed');
    expect(master.statesOf('keep')).toEqual(['starting', 'running']);
    expect(a.registrations).toBe(2);
  });
});
