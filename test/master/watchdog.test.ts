import { describe, expect, it } from 'vitest';
import { Master } from '../../src/master/index.js';
import { masterFixture, recordEvents, running, service, waitFor } from './helpers.js';

const fx = masterFixture();

describe('Master task watchdog', () => {
  it('marks a task stuck in staging lost (staging_timeout), kills it on its agent and replaces it', async () => {
    const m = await fx.open({ stagingTimeoutMs: 200 });
    const events = recordEvents(m);
    // The first attempt's launch goes nowhere (the agent takes it and never reports); later ones run.
    const a = fx.agent({
      id: 'a1',
      onLaunch: (info, agent) => {
        if (info.taskId.endsWith('.0')) return;
        agent.report(info.taskId, 'starting');
        agent.report(info.taskId, 'running');
      },
    });
    await a.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => m.getTask('web.0.0').state === 'staging', 'staging');
    await waitFor(() => running(m, 'web')[0]?.id === 'web.0.1', 'the replacement running');
    const lost = m.getTask('web.0.0');
    expect(lost.state).toBe('lost');
    expect(lost.reason).toBe('staging_timeout');
    expect(lost.history.map((h) => h.state)).toEqual(['pending', 'staging', 'lost']);
    await waitFor(() => a.kills.includes('web.0.0'), 'a KillTask for the stuck task');
    expect(a.launches).toEqual(['web.0.0', 'web.0.1']);
    expect(events.some((e) => e.type === 'task_state' && e.taskId === 'web.0.0' && e.state === 'lost' && e.data?.reason === 'staging_timeout')).toBe(
      true,
    );
    expect(m.cluster().used.cpus).toBe(1); // the lost attempt's resources were given back
  });

  it('leaves a task that reports within the staging timeout alone', async () => {
    const m = await fx.open({ stagingTimeoutMs: 1_000 });
    const a = fx.agent({
      id: 'a1',
      onLaunch: (info, agent) => {
        setTimeout(() => agent.report(info.taskId, 'starting'), 50);
      },
    });
    await a.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => m.getTask('web.0.0').state === 'starting', 'starting');
    await new Promise((r) => setTimeout(r, 1_200)); // past the timeout
    expect(m.getTask('web.0.0').state).toBe('starting');
    expect(a.kills).toEqual([]);
  });

  it('resends a KillTask with backoff while the task has not ended and the agent stays connected', async () => {
    const m = await fx.open({ killRetryMs: 40, killRetryMaxMs: 160 });
    // An agent that drops KillTasks on the floor (a frame lost, an agent too busy to act).
    const a = fx.agent({ id: 'a1', honourKills: false });
    await a.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => running(m, 'web').length === 1, 'running');
    const t0 = performance.now();
    await m.killJob('web');
    await waitFor(() => a.kills.filter((id) => id === 'web.0.0').length >= 4, 'the kill sent again, repeatedly');
    // 40, 80, 160 ms after the first: backed off, so at least 40+80+160 ms in all.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(m.getTask('web.0.0').state).toBe('running');

    // Disconnected: nothing is resent (the re-registration carries the kill instead).
    a.disconnect();
    await new Promise((r) => setTimeout(r, 30));
    const whileAway = a.kills.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(a.kills.length).toBe(whileAway);
    await a.connect(m);
    expect(a.kills.length).toBeGreaterThan(whileAway); // Registered.kill_tasks
    // The agent (finally) kills it: the resends stop.
    a.report('web.0.0', 'killed', { reason: 'killed' });
    await waitFor(() => m.getTask('web.0.0').state === 'killed', 'killed');
    const after = a.kills.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(a.kills.length).toBe(after);
  });

  it('refuses bad timer options, naming them', async () => {
    const dataDir = await fx.tempDir();
    await expect(Master.open({ dataDir, stagingTimeoutMs: 0 })).rejects.toThrow(/stagingTimeoutMs/);
    await expect(Master.open({ dataDir, killRetryMs: -1 })).rejects.toThrow(/killRetryMs/);
    await expect(Master.open({ dataDir, killRetryMs: 1_000, killRetryMaxMs: 10 })).rejects.toThrow(/killRetryMaxMs/);
  });
});
