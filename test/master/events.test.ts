import { describe, expect, it } from 'vitest';
import type { ClusterEvent } from '../../src/master/types.js';
import { batch, masterFixture, running, service, waitFor } from './helpers.js';

const fx = masterFixture();

describe('Master events and metrics', () => {
  it('emits every state change once, in seq order with no gaps, consistent with the final state', async () => {
    const m = await fx.open({ heartbeatTimeoutMs: 1_000, heartbeatIntervalMs: 50 });
    const live: ClusterEvent[] = [];
    m.events.subscribe((e) => live.push(e));
    const a = fx.agent({ id: 'a1' });
    const b = fx.agent({
      id: 'a2',
      onLaunch: (t, agent) => {
        agent.report(t.taskId, 'running');
        if (t.job === 'b') setTimeout(() => agent.finish(t.taskId), 5);
      },
    });
    await a.connect(m);
    await b.connect(m);
    await m.submitJob(service('s', 3));
    await m.submitJob(batch('b', 2));
    await waitFor(() => running(m, 's').length === 3 && m.getJob('b').state === 'finished', 'work done');
    await m.scaleJob('s', 1);
    await m.killTask('s.0.0');
    a.silence();
    await waitFor(() => m.listAgents().find((x) => x.id === 'a1')?.state === 'lost', 'a1 lost');
    await waitFor(() => running(m, 's').length === 1, 'one running');
    await waitFor(() => b.pendingAcks === 0, 'quiet');
    await new Promise((r) => setTimeout(r, 50));

    const all = m.events.since(0)!;
    expect(all).toEqual(live);
    all.forEach((e, i) => expect(e.seq).toBe(i + 1));
    for (let i = 1; i < all.length; i++) expect(all[i]!.at).toBeGreaterThanOrEqual(all[i - 1]!.at);
    // Replaying the task events gives each task's final state, and each task's history, transition for transition.
    const last = new Map<string, string>();
    const perTask = new Map<string, string[]>();
    for (const e of all) {
      if (e.taskId === undefined || e.state === undefined || e.type === 'error') continue;
      last.set(e.taskId, e.state);
      perTask.set(e.taskId, [...(perTask.get(e.taskId) ?? []), e.state]);
    }
    for (const t of m.listTasks()) {
      expect(last.get(t.id)).toBe(t.state);
      expect(perTask.get(t.id)).toEqual(t.history.map((h) => h.state));
    }
    const types = new Set(all.map((e) => e.type));
    for (const t of ['job_submitted', 'job_scaled', 'job_finished', 'task_state', 'task_placed', 'agent_registered', 'agent_lost']) expect(types).toContain(t);
  });

  it('tells the balancer what it needs: http routes and cpus on submit, health changes, kills before they land', async () => {
    const m = await fx.open();
    const live: ClusterEvent[] = [];
    m.events.subscribe((e) => live.push(e));
    const a = fx.agent({
      id: 'a1',
      // Healthy on the second report, so one task_health(false) then one task_health(true); repeats add nothing.
      onLaunch: (t, agent) => {
        agent.report(t.taskId, 'running', { healthy: false });
        agent.report(t.taskId, 'running', { healthy: false });
        agent.report(t.taskId, 'running', { healthy: true });
      },
      honourKills: false,
    });
    await a.connect(m);
    const http = { hosts: ['web.example'], pathPrefix: '/api', portIndex: 0, weight: 2 };
    await m.submitJob(service('web', 1, { resources: { cpus: 1.5, mem: '1Gi', ports: 1 }, healthCheck: { path: '/health' }, http }));
    await waitFor(() => live.some((e) => e.type === 'task_health' && e.data?.healthy === true), 'healthy');
    await m.killTask('web.0.0');
    await waitFor(() => live.some((e) => e.type === 'task_killing'), 'killing');

    expect(live.find((e) => e.type === 'job_submitted')?.data).toEqual({ type: 'service', instances: 1, cpus: 1.5, resources: { cpus: 1.5, mem: '1Gi', ports: 1 }, http });
    expect(live.find((e) => e.type === 'agent_registered')?.data?.cpus).toBeGreaterThan(0);
    const health = live.filter((e) => e.type === 'task_health');
    expect(health.map((e) => e.data?.healthy)).toEqual([false, true]);
    for (const e of health) expect(e).toMatchObject({ job: 'web', taskId: 'web.0.0', agentId: 'a1' });
    const killing = live.filter((e) => e.type === 'task_killing');
    expect(killing).toHaveLength(1);
    expect(killing[0]).toMatchObject({ job: 'web', taskId: 'web.0.0', agentId: 'a1' });
    expect(killing[0]!.state).toBeUndefined();
    expect(m.getTask('web.0.0').state).toBe('running'); // the agent has not acted on it yet: still drainable
  });

  it('exposes Prometheus metrics', async () => {
    const m = await fx.open();
    await fx.agent({ id: 'a1' }).connect(m);
    await m.submitJob(service('s', 2));
    await waitFor(() => running(m, 's').length === 2, 'two running');
    const text = await m.metrics.metrics();
    expect(text).toMatch(/^borealis_placements_total 2$/m);
    expect(text).toMatch(/^borealis_tasks\{state="running"\} 2$/m);
    expect(text).toMatch(/^borealis_agents\{state="up"\} 1$/m);
    expect(text).toMatch(/^borealis_jobs\{state="running"\} 1$/m);
    expect(text).toMatch(/^borealis_placement_latency_seconds_count 2$/m);
  });
});
