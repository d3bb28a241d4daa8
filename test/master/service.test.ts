import { describe, expect, it } from 'vitest';
import type { TaskView } from '../../src/master/types.js';
import { masterFixture, running, service, task, waitFor } from './helpers.js';

const fx = masterFixture();

const createdAt = (t: TaskView): number => t.history[0]!.at;
const endedAt = (t: TaskView): number => t.history[t.history.length - 1]!.at;

describe('Master services', () => {
  it('runs every instance of a submitted service, once', async () => {
    const m = await fx.open();
    const a = fx.agent({ id: 'a1' });
    const b = fx.agent({ id: 'a2' });
    await Promise.all([a.connect(m), b.connect(m)]);
    const view = await m.submitJob(service('web', 6, { resources: { cpus: 1, mem: '1Gi', ports: 2 } }));
    expect(view.state).toBe('running');
    expect(view.spec.instances).toBe(6);
    await waitFor(() => running(m, 'web').length === 6, 'six running instances');
    const tasks = m.listTasks('web');
    expect(tasks.map((t) => t.id)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `web.${i}.0`));
    for (const t of tasks) {
      expect(t.ports).toHaveLength(2);
      expect(t.endpoint).toBe(`127.0.0.1:${t.ports[0]}`);
      expect(t.history.map((h) => h.state)).toEqual(['pending', 'staging', 'starting', 'running']);
    }
    expect([...a.launches, ...b.launches].sort()).toEqual(tasks.map((t) => t.id).sort());
    expect(m.getJob('web').tasks).toEqual({ running: 6 });
    const c = m.cluster();
    expect(c.agents).toEqual({ total: 2, up: 2, draining: 0, lost: 0 });
    expect(c.used.cpus).toBe(6);
    expect(c.total.cpus).toBe(16);
    expect(c.free.cpus).toBe(10);
    expect(c.tasks).toEqual({ running: 6 });
    await waitFor(() => a.pendingAcks === 0 && b.pendingAcks === 0, 'every update acknowledged');
  });

  it('keeps tasks pending with a reason while nothing fits, and places them when an agent joins', async () => {
    const m = await fx.open();
    await m.submitJob(service('big', 2, { resources: { cpus: 6, mem: '1Gi' } }));
    await waitFor(() => m.getTask('big.0.0').message, 'a pending reason');
    expect(m.getTask('big.0.0').state).toBe('pending');
    expect(m.getTask('big.0.0').message).toMatch(/no nodes|cannot be placed|waiting/);
    await fx.agent({ id: 'a1' }).connect(m);
    await waitFor(() => running(m, 'big').length === 1, 'one instance on the only agent');
    expect(m.getTask('big.1.0').state).toBe('pending');
    expect(m.getTask('big.1.0').message).toMatch(/insufficient cpus/);
    await fx.agent({ id: 'a2' }).connect(m);
    await waitFor(() => running(m, 'big').length === 2, 'both instances once a second agent joined');
    expect(m.getTask('big.1.0').message).toBeUndefined();
  });

  it('replaces a failed instance after a backoff that doubles per consecutive failure', async () => {
    const m = await fx.open({ restartBackoffMs: 5_000 });
    // Attempts 0 and 1 of instance 0 crash right after starting; attempt 2 stays up.
    const a = fx.agent({
      id: 'a1',
      onLaunch: (task, agent) => {
        agent.report(task.taskId, 'running');
        if (task.instance === 0 && task.taskId !== 'crash.0.2') setTimeout(() => agent.fail(task.taskId, 'exited', 3), 5);
      },
    });
    await a.connect(m);
    // The job's own policy overrides the master's 5 s default.
    await m.submitJob(service('crash', 2, { restartPolicy: { backoffMs: 100, maxBackoffMs: 1_000 } }));
    await waitFor(() => task(m, 'crash.0.2')?.state === 'running', 'the third attempt running');
    const [t0, t1, t2] = ['crash.0.0', 'crash.0.1', 'crash.0.2'].map((id) => m.getTask(id));
    expect(t0!.state).toBe('failed');
    expect(t0!.exitCode).toBe(3);
    expect(t0!.reason).toBe('exited');
    expect(t1!.state).toBe('failed');
    // Timers may fire a millisecond early against Date.now(); the margin is far below the doubling.
    expect(createdAt(t1!) - endedAt(t0!)).toBeGreaterThanOrEqual(95);
    expect(createdAt(t2!) - endedAt(t1!)).toBeGreaterThanOrEqual(195);
    // The other instance never moved.
    expect(m.listTasks('crash').filter((t) => t.instance === 1).map((t) => t.id)).toEqual(['crash.1.0']);
    expect(m.getJob('crash').tasks).toEqual({ running: 2 });
  });

  it('shows a crash-looping instance in the job view while it waits out its backoff', async () => {
    const m = await fx.open({ restartBackoffMs: 60_000 });
    const a = fx.agent({
      id: 'a1',
      onLaunch: (task, agent) => {
        agent.report(task.taskId, 'running');
        if (task.instance === 1) setTimeout(() => agent.fail(task.taskId, 'exited', 1), 5);
      },
    });
    await a.connect(m);
    await m.submitJob(service('loop', 2));
    await waitFor(() => m.getJob('loop').backingOff !== undefined, 'instance 1 backing off');
    const view = m.getJob('loop');
    expect(view.backingOff).toHaveLength(1);
    expect(view.backingOff![0]).toMatchObject({ instance: 1, failuresInARow: 1 });
    expect(view.backingOff![0]!.restartInMs).toBeGreaterThan(0);
    expect(view.backingOff![0]!.restartInMs).toBeLessThanOrEqual(60_000);
    // A job with nothing waiting has no such list.
    await m.submitJob(service('calm', 1));
    await waitFor(() => m.getJob('calm').tasks.running === 1, 'calm running');
    expect(m.getJob('calm').backingOff).toBeUndefined();
  });

  it('scales up and down; scale-down kills the highest-numbered instances', async () => {
    const m = await fx.open();
    const a = fx.agent({ id: 'a1' });
    await a.connect(m);
    await m.submitJob(service('svc', 2));
    await waitFor(() => running(m, 'svc').length === 2, 'two running');
    const up = await m.scaleJob('svc', 5);
    expect(up.spec.instances).toBe(5);
    await waitFor(() => running(m, 'svc').length === 5, 'five running');
    await m.scaleJob('svc', 1);
    await waitFor(() => running(m, 'svc').length === 1, 'one running');
    const tasks = m.listTasks('svc');
    expect(running(m, 'svc').map((t) => t.id)).toEqual(['svc.0.0']);
    for (const t of tasks.filter((x) => x.instance > 0)) expect(t.state).toBe('killed');
    expect(m.getJob('svc').tasks).toEqual({ running: 1, killed: 4 });
    // Nothing replaced the killed ones; scaling up again starts new attempts with fresh ids.
    await m.scaleJob('svc', 3);
    await waitFor(() => running(m, 'svc').length === 3, 'three running again');
    expect(running(m, 'svc').map((t) => t.id)).toEqual(['svc.0.0', 'svc.1.1', 'svc.2.1']);
    expect(new Set(a.launches).size).toBe(a.launches.length);
    expect(m.cluster().used.cpus).toBe(3);
  });

  it('kills a job: every task killed, nothing replaced, resources freed, idempotent', async () => {
    const m = await fx.open();
    await fx.agent({ id: 'a1' }).connect(m);
    await m.submitJob(service('doomed', 3));
    await waitFor(() => running(m, 'doomed').length === 3, 'three running');
    const view = await m.killJob('doomed');
    expect(view.state).toBe('killed');
    await waitFor(() => m.listTasks('doomed').every((t) => t.state === 'killed'), 'every task killed');
    expect(m.listTasks('doomed')).toHaveLength(3);
    expect(m.cluster().used.cpus).toBe(0);
    expect((await m.killJob('doomed')).state).toBe('killed');
    await expect(m.scaleJob('doomed', 4)).rejects.toMatchObject({ code: 'BRL_ERR_JOB_NOT_ACTIVE' });
    // A killed job's name can be used again; attempts continue so ids stay unique.
    await m.submitJob(service('doomed', 1));
    await waitFor(() => running(m, 'doomed').length === 1, 're-created job running');
    expect(running(m, 'doomed')[0]!.id).toBe('doomed.0.1');
  });

  it('kills one instance; the service replaces it at once with a new attempt', async () => {
    const m = await fx.open({ restartBackoffMs: 60_000 });
    const a = fx.agent({ id: 'a1' });
    await a.connect(m);
    await m.submitJob(service('one', 2));
    await waitFor(() => running(m, 'one').length === 2, 'two running');
    const killed = await m.killTask('one.1.0');
    expect(killed.id).toBe('one.1.0');
    await waitFor(() => m.listTasks('one').some((t) => t.id === 'one.1.1' && t.state === 'running'), 'the replacement running');
    expect(m.getTask('one.1.0').state).toBe('killed');
    expect(a.kills).toEqual(['one.1.0']);
    expect(running(m, 'one').map((t) => t.id)).toEqual(['one.0.0', 'one.1.1']);
  });

  it('withdraws a pending task that is killed before it is placed', async () => {
    const m = await fx.open();
    await m.submitJob(service('nowhere', 1));
    await m.killTask('nowhere.0.0');
    await waitFor(() => m.listTasks('nowhere').length === 2, 'a replacement attempt');
    expect(m.getTask('nowhere.0.0').state).toBe('killed');
    expect(m.getTask('nowhere.0.1').state).toBe('pending');
    await m.killJob('nowhere');
    expect(m.listTasks('nowhere').map((t) => t.state)).toEqual(['killed', 'killed']);
  });
});
