import { describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../src/master/store.js';
import type { TaskStateName, TaskView } from '../../src/master/types.js';
import { taskView } from '../../src/master/views.js';
import { masterFixture, running, service, task, waitFor } from './helpers.js';

const fx = masterFixture();

/** A short timeout so the silent agent is declared lost quickly; 20 heartbeats per timeout keep the other inside it. */
const FAST = { heartbeatTimeoutMs: 1_000, heartbeatIntervalMs: 50 };

function byState(tasks: TaskView[]): Partial<Record<TaskStateName, number>> {
  const out: Partial<Record<TaskStateName, number>> = {};
  for (const t of tasks) out[t.state] = (out[t.state] ?? 0) + 1;
  return out;
}

function gauge(text: string, state: string): number {
  const m = new RegExp(`^borealis_tasks\\{state="${state}"\\} (\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`no borealis_tasks sample for ${state}`);
  return Number(m[1]);
}

describe('task counts and views after tasks fail or are lost', () => {
  it('counts every task the master holds in /metrics and the cluster view, as the listing shows them', async () => {
    const m = await fx.open(FAST);
    const healthy = { onLaunch: (t: { taskId: string }, agent: { report: (id: string, s: TaskStateName, x: { healthy: boolean }) => void }) => agent.report(t.taskId, 'running', { healthy: true }) };
    const a = fx.agent({ id: 'a1', ...healthy });
    await a.connect(m);
    await m.submitJob(service('web', 2, { resources: { cpus: 1, mem: '1Gi', ports: 1 }, healthCheck: { path: '/health' } }));
    await waitFor(() => running(m, 'web').length === 2, 'both running on a1');
    expect(m.getTask('web.0.0').healthy).toBe(true);

    // Instance 0 crashes and is replaced on a1; then a1 goes silent and both its tasks are lost.
    a.fail('web.0.0', 'exited', 2);
    await waitFor(() => task(m, 'web.0.1')?.state === 'running', 'the replacement running');
    await fx.agent({ id: 'a2', ...healthy }).connect(m);
    a.silence();
    await waitFor(() => running(m, 'web').length === 2 && running(m, 'web').every((t) => t.agentId === 'a2'), 'both replaced on a2');

    const listed = m.listTasks();
    expect(listed.map((t) => [t.id, t.state])).toEqual([
      ['web.0.0', 'failed'],
      ['web.0.1', 'lost'],
      ['web.0.2', 'running'],
      ['web.1.0', 'lost'],
      ['web.1.1', 'running'],
    ]);
    const held = { failed: 1, lost: 2, running: 2 };
    expect(byState(listed)).toEqual(held);

    const text = await m.metrics.metrics();
    for (const s of ['pending', 'staging', 'starting', 'running', 'finished', 'failed', 'killed', 'lost'] as const) {
      expect([s, gauge(text, s)]).toEqual([s, held[s as keyof typeof held] ?? 0]);
    }
    expect(text).toMatch(/^# HELP borealis_tasks Tasks the master holds \(every retained attempt, ended ones included\) by state$/m);
    expect(m.cluster().tasks).toEqual(held);
    // A job's summary stays what its instances are doing now: the latest attempt of each.
    expect(m.getJob('web').tasks).toEqual({ running: 2 });

    // Health is a verdict on a running task only: ended attempts carry none.
    for (const t of listed) {
      if (t.state === 'running') expect([t.id, t.healthy]).toEqual([t.id, true]);
      else expect([t.id, t.healthy]).toEqual([t.id, undefined]);
    }
    expect(m.getTask('web.0.0').healthy).toBeUndefined();
  });

  it('taskView shows healthy only while the task is running', () => {
    const base: TaskRecord = {
      id: 'web.0.0',
      job: 'web',
      instance: 0,
      attempt: 0,
      state: 'running',
      ports: [31000],
      history: [],
      healthy: true,
      killRequested: false,
    };
    expect(taskView(base).healthy).toBe(true);
    expect(taskView({ ...base, healthy: false }).healthy).toBe(false);
    for (const state of ['staging', 'starting', 'finished', 'failed', 'killed', 'lost'] as const) {
      expect([state, taskView({ ...base, state }).healthy]).toEqual([state, undefined]);
      expect([state, taskView({ ...base, state, healthy: false }).healthy]).toEqual([state, undefined]);
    }
    expect(taskView({ ...base, healthy: undefined }).healthy).toBeUndefined();
  });
});
