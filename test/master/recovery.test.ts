import { describe, expect, it } from 'vitest';
import type { Master } from '../../src/master/index.js';
import type { SimAgent } from '../../src/master/testing/sim-agent.js';
import { batch, masterFixture, running, service, task, waitFor } from './helpers.js';

const fx = masterFixture();

/** What must survive a restart: every job with its state and scale, every task with its state and placement. */
function durableState(m: Master): unknown {
  return {
    jobs: m.listJobs().map((j) => ({ name: j.name, state: j.state, spec: j.spec, tasks: j.tasks })),
    tasks: m.listTasks().map((t) => ({ id: t.id, state: t.state, agentId: t.agentId, ports: t.ports, history: t.history })),
  };
}

describe('Master recovery', () => {
  it('restarts with every job back; re-registering agents are reconciled and nothing is launched twice', async () => {
    const dataDir = await fx.tempDir();
    const m1 = await fx.open({ dataDir, fsync: true });
    // Batch tasks finish unless they are instance 1, which keeps running across the restart.
    const finishBatch = (t: { taskId: string; instance?: number }, agent: SimAgent): void => {
      agent.report(t.taskId, 'running');
      if (t.taskId.startsWith('etl.') && t.instance !== 1) setTimeout(() => agent.finish(t.taskId), 5);
    };
    const a = fx.agent({ id: 'a1', onLaunch: finishBatch });
    const b = fx.agent({ id: 'a2', onLaunch: finishBatch });
    await Promise.all([a.connect(m1), b.connect(m1)]);
    await m1.submitJob(service('web', 4, { resources: { cpus: 1, mem: '1Gi', ports: 1 } }));
    await m1.submitJob(batch('etl', 3));
    await m1.submitJob(service('gone', 1));
    await m1.submitJob(service('huge', 1, { resources: { cpus: 64, mem: '1Gi' } }));
    await waitFor(() => running(m1, 'web').length === 4 && running(m1, 'gone').length === 1, 'web and gone running');
    await waitFor(() => m1.listTasks('etl').filter((t) => t.state === 'finished').length === 2, 'two etl instances finished');
    await waitFor(() => running(m1, 'etl').length === 1, 'etl.1 running');
    await m1.killJob('gone');
    await waitFor(() => task(m1, 'gone.0.0')?.state === 'killed', 'gone killed');
    await m1.drainAgent('a2').then(() => waitFor(() => running(m1, 'web').every((t) => t.agentId === 'a1') && running(m1, 'web').length === 4, 'web moved'));
    await waitFor(() => a.pendingAcks === 0 && b.pendingAcks === 0, 'quiet');
    const before = durableState(m1);
    const launches = a.launches.length + b.launches.length;
    const kills = a.kills.length + b.kills.length;
    await fx.close(m1);

    const m2 = await fx.open({ dataDir, fsync: true, reconcileGraceMs: 30_000 });
    expect(durableState(m2)).toEqual(before);
    expect(m2.getJob('gone').state).toBe('killed');
    expect(m2.getJob('etl').state).toBe('running');
    expect(m2.getTask('huge.0.0').state).toBe('pending');
    // Until the agents are back, their tasks are still accounted as running there (provisionally).
    expect(m2.getJob('web').tasks).toEqual({ running: 4 });

    await Promise.all([a.connect(m2), b.connect(m2)]);
    expect(a.kills.length + b.kills.length).toBe(kills); // nothing they run was unknown or replaced
    await new Promise((r) => setTimeout(r, 150));
    expect(a.launches.length + b.launches.length).toBe(launches);
    expect(running(m2, 'web').map((t) => t.id)).toEqual(running(m1, 'web').map((t) => t.id));
    // Adopted tasks hold their resources and ports again: a1 runs 4 web + maybe etl.1.
    const onA1 = m2.listTasks().filter((t) => t.agentId === 'a1' && t.state === 'running').length;
    expect(m2.listAgents().find((x) => x.id === 'a1')!.used.cpus).toBe(onA1);
    expect(m2.listAgents().find((x) => x.id === 'a2')!.state).toBe('draining');
    // New work lands in the remaining room without colliding on ports.
    await m2.scaleJob('web', 6);
    await waitFor(() => running(m2, 'web').length === 6, 'six running');
    const ports = running(m2, 'web').map((t) => t.ports[0]);
    expect(new Set(ports).size).toBe(6);
    // The batch job completes on the new master.
    const etl1 = running(m2, 'etl')[0]!;
    (etl1.agentId === 'a1' ? a : b).finish(etl1.id);
    await waitFor(() => m2.getJob('etl').state === 'finished', 'etl finished after the restart');
  });

  it('tasks of an agent that does not re-register within the grace period are lost and replaced; it is then told to kill them', async () => {
    const dataDir = await fx.tempDir();
    const m1 = await fx.open({ dataDir });
    const a = fx.agent({ id: 'a1' });
    await a.connect(m1);
    await m1.submitJob(service('web', 2));
    await waitFor(() => running(m1, 'web').length === 2, 'two running');
    await waitFor(() => a.pendingAcks === 0, 'quiet');
    await fx.close(m1);

    const m2 = await fx.open({ dataDir, reconcileGraceMs: 200 });
    const b = fx.agent({ id: 'a2' });
    await b.connect(m2);
    await waitFor(() => running(m2, 'web').length === 2 && running(m2, 'web').every((t) => t.agentId === 'a2'), 'replaced on a2');
    expect(m2.getTask('web.0.0').state).toBe('lost');
    await a.connect(m2);
    expect(a.kills.sort()).toEqual(['web.0.0', 'web.1.0']);
    expect(b.launches).toEqual(['web.0.1', 'web.1.1']);
  });

  it('compacts the journal into snapshots and recovers from snapshot plus tail', async () => {
    const dataDir = await fx.tempDir();
    const m1 = await fx.open({ dataDir, compactEvery: 25 });
    const a = fx.agent({ id: 'a1', cpusMilli: 64_000, memMib: 128 * 1024 });
    await a.connect(m1);
    for (let i = 0; i < 6; i++) await m1.submitJob(service(`s${i}`, 3));
    await waitFor(() => m1.listTasks().filter((t) => t.state === 'running').length === 18, 'eighteen running');
    await m1.scaleJob('s0', 1);
    await m1.killJob('s5');
    await waitFor(() => m1.listTasks().filter((t) => t.state === 'running').length === 13, 'thirteen running');
    await waitFor(() => a.pendingAcks === 0, 'quiet');
    const before = durableState(m1);
    await fx.close(m1);
    const { readdir } = await import('node:fs/promises');
    const files = await readdir(`${dataDir}/journal`);
    expect(files.some((f) => f.endsWith('.snap'))).toBe(true);
    const m2 = await fx.open({ dataDir });
    expect(durableState(m2)).toEqual(before);
    await a.connect(m2);
    await new Promise((r) => setTimeout(r, 100));
    expect(new Set(a.launches).size).toBe(a.launches.length);
    expect(m2.listTasks().filter((t) => t.state === 'running')).toHaveLength(13);
  });
});
