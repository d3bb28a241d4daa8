import { describe, expect, it } from 'vitest';
import { batch, masterFixture, recordEvents, task, waitFor } from './helpers.js';

const fx = masterFixture();

describe('Master batch jobs', () => {
  it('runs to completion: finished once every instance finished, resources freed', async () => {
    const m = await fx.open();
    const events = recordEvents(m);
    const a = fx.agent({
      id: 'a1',
      onLaunch: (t, agent) => {
        agent.report(t.taskId, 'running');
        setTimeout(() => agent.finish(t.taskId), 10 + 10 * (t.instance ?? 0));
      },
    });
    await a.connect(m);
    await m.submitJob(batch('crunch', 4));
    await waitFor(() => m.getJob('crunch').state === 'finished', 'the job finished');
    expect(m.getJob('crunch').tasks).toEqual({ finished: 4 });
    for (const t of m.listTasks('crunch')) {
      expect(t.attempt).toBe(0);
      expect(t.exitCode).toBe(0);
    }
    expect(m.cluster().used.cpus).toBe(0);
    // Events go out once the journal has the change on disk, so they can trail getJob().
    await waitFor(() => events.some((e) => e.type === 'job_finished'), 'the job_finished event');
    expect(events.filter((e) => e.type === 'job_finished')).toEqual([expect.objectContaining({ job: 'crunch', data: { state: 'finished' } })]);
  });

  it('retries a failed instance up to maxRetries, then the job fails and its other tasks are killed', async () => {
    const m = await fx.open();
    // Instance 0 always fails; instance 1 would run forever.
    const a = fx.agent({
      id: 'a1',
      onLaunch: (t, agent) => {
        agent.report(t.taskId, 'running');
        if (t.instance === 0) setTimeout(() => agent.fail(t.taskId, 'exited', 2), 5);
      },
    });
    await a.connect(m);
    await m.submitJob(batch('flaky', 2, { restartPolicy: { maxRetries: 2, backoffMs: 10 } }));
    await waitFor(() => m.getJob('flaky').state === 'failed', 'the job failed');
    const attempts = m.listTasks('flaky').filter((t) => t.instance === 0);
    expect(attempts.map((t) => [t.id, t.state])).toEqual([
      ['flaky.0.0', 'failed'],
      ['flaky.0.1', 'failed'],
      ['flaky.0.2', 'failed'],
    ]);
    await waitFor(() => task(m, 'flaky.1.0')?.state === 'killed', 'the other instance killed');
    expect(a.launches.filter((id) => id.startsWith('flaky.1.'))).toEqual(['flaky.1.0']);
  });

  it('retries a failure and still finishes when a retry succeeds; lost tasks do not spend retries', async () => {
    const m = await fx.open();
    let failedOnce = false;
    const a = fx.agent({
      id: 'a1',
      onLaunch: (t, agent) => {
        agent.report(t.taskId, 'running');
        setTimeout(() => {
          if (t.instance === 0 && !failedOnce) {
            failedOnce = true;
            agent.fail(t.taskId);
          } else if (t.taskId === 'retry.1.0') {
            agent.report(t.taskId, 'lost', { reason: 'vanished' });
          } else {
            agent.finish(t.taskId);
          }
        }, 5);
      },
    });
    await a.connect(m);
    await m.submitJob(batch('retry', 2, { restartPolicy: { maxRetries: 1, backoffMs: 10 } }));
    await waitFor(() => m.getJob('retry').state === 'finished', 'the job finished');
    expect(m.listTasks('retry').map((t) => [t.id, t.state])).toEqual([
      ['retry.0.0', 'failed'],
      ['retry.0.1', 'finished'],
      ['retry.1.0', 'lost'],
      ['retry.1.1', 'finished'],
    ]);
  });

  it('a batch job of zero instances is finished at once', async () => {
    const m = await fx.open();
    await m.submitJob(batch('nothing', 0));
    await waitFor(() => m.getJob('nothing').state === 'finished', 'finished');
  });
});
