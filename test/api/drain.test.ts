/**
 * Draining and undraining agents over the HTTP API: a real master on 127.0.0.1:0 and simulated agents on its
 * WebSocket endpoint. Undrain puts an agent back to work (pending tasks land on it), is idempotent, and a lost
 * agent can be drained without ceasing to be lost.
 */
import { describe, expect, it } from 'vitest';
import { SimulatedAgent } from '../../src/agent/index.js';
import { apiFixture, waitFor } from './helpers.js';

const fx = apiFixture();

async function call(addr: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://${addr}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: r.status, body: (await r.json()) as unknown };
}

function agent(addr: string, id: string): SimulatedAgent {
  const a = SimulatedAgent.start({ master: addr, agentId: id, resources: 'cpus=4,mem=4Gi,disk=10Gi', ports: '31000-31999' });
  fx.onCleanup(() => a.stop());
  return a;
}

const WEB = { name: 'web', type: 'service', instances: 2, command: 'sleep 1000', resources: { cpus: 1, mem: '128Mi' } };

const states = async (addr: string): Promise<[string, string][]> =>
  (await call(addr, 'GET', '/v1/agents')).body.agents.map((a: { id: string; state: string }) => [a.id, a.state]);

describe('POST /v1/agents/:id/undrain', () => {
  it('puts a drained agent back to work: tasks pending for want of room are placed on it', async () => {
    const { addr, master } = await fx.start();
    const sim = agent(addr, 'sim-0');
    await sim.whenRegistered();
    expect(await call(addr, 'POST', '/v1/agents/sim-0/drain')).toMatchObject({ status: 200, body: { id: 'sim-0', state: 'draining' } });

    await call(addr, 'POST', '/v1/jobs', WEB);
    // The only agent is draining: both instances wait.
    await waitFor(async () => {
      const tasks = (await call(addr, 'GET', '/v1/tasks?job=web')).body.tasks as { state: string; message?: string }[];
      return tasks.length === 2 && tasks.every((t) => t.state === 'pending' && t.message !== undefined);
    }, 'two pending tasks with a reason');

    const undrained = await call(addr, 'POST', '/v1/agents/sim-0/undrain');
    expect(undrained).toMatchObject({ status: 200, body: { id: 'sim-0', state: 'up' } });
    // Stream readers (the dashboard) learn of it: one agent_undrained, after the agent_draining.
    const agentEvents = ((await master.events.read(0)) as { type: string; agentId?: string; data?: { state?: string } }[])
      .filter((e) => e.type === 'agent_draining' || e.type === 'agent_undrained')
      .map((e) => [e.type, e.agentId, e.data?.state]);
    expect(agentEvents).toEqual([
      ['agent_draining', 'sim-0', 'draining'],
      ['agent_undrained', 'sim-0', 'up'],
    ]);
    await waitFor(async () => (await call(addr, 'GET', '/v1/jobs/web')).body.tasks.running === 2, 'both instances running on sim-0');
    const tasks = (await call(addr, 'GET', '/v1/tasks?job=web')).body.tasks as { agentId: string }[];
    expect(tasks.map((t) => t.agentId)).toEqual(['sim-0', 'sim-0']);
    expect((await call(addr, 'GET', '/v1/cluster')).body.agents).toEqual({ total: 1, up: 1, draining: 0, lost: 0 });
  });

  it('is idempotent on an agent that is not draining, and refuses an unknown agent with 404', async () => {
    const { addr } = await fx.start();
    await agent(addr, 'sim-0').whenRegistered();
    const first = await call(addr, 'POST', '/v1/agents/sim-0/undrain');
    expect(first).toMatchObject({ status: 200, body: { id: 'sim-0', state: 'up' } });
    expect(await call(addr, 'POST', '/v1/agents/sim-0/undrain')).toEqual(first);
    // Drain, undrain, drain again: each one takes effect.
    expect((await call(addr, 'POST', '/v1/agents/sim-0/drain')).body.state).toBe('draining');
    expect((await call(addr, 'POST', '/v1/agents/sim-0/undrain')).body.state).toBe('up');
    expect((await call(addr, 'POST', '/v1/agents/sim-0/drain')).body.state).toBe('draining');

    const unknown = await call(addr, 'POST', '/v1/agents/nope/undrain');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('BRL_ERR_UNKNOWN_AGENT');
    expect((await call(addr, 'GET', '/v1/agents/sim-0/undrain')).status).toBe(405);
  });
});

describe('POST /v1/agents/:id/drain on a lost agent', () => {
  it('records the drain and leaves the agent lost; it re-registers draining, and undrain makes it up', async () => {
    const { addr, master } = await fx.start({ heartbeatTimeoutMs: 300 });
    const first = agent(addr, 'sim-0');
    await first.whenRegistered();
    await first.stop(); // its host dies: no goodbye
    await waitFor(async () => (await states(addr))[0]?.[1] === 'lost', 'sim-0 lost');
    const events: { type: string; agentId?: string; data?: Record<string, unknown> }[] = [];
    const unsubscribe = master.events.subscribe((e) => events.push(e));
    fx.onCleanup(unsubscribe);

    const drained = await call(addr, 'POST', '/v1/agents/sim-0/drain');
    expect(drained).toMatchObject({ status: 200, body: { id: 'sim-0', state: 'lost' } });
    expect(await states(addr)).toEqual([['sim-0', 'lost']]);
    expect((await call(addr, 'GET', '/v1/cluster')).body.agents).toEqual({ total: 1, up: 0, draining: 0, lost: 1 });
    // The stream says the drain was recorded and that the agent is still lost.
    expect(events.filter((e) => e.type === 'agent_draining')).toMatchObject([{ agentId: 'sim-0', data: { state: 'lost' } }]);

    const back = agent(addr, 'sim-0');
    await back.whenRegistered();
    await waitFor(async () => (await states(addr))[0]?.[1] === 'draining', 'sim-0 back, draining');
    await call(addr, 'POST', '/v1/jobs', { ...WEB, instances: 1 });
    expect((await call(addr, 'GET', '/v1/tasks?job=web')).body.tasks).toMatchObject([{ state: 'pending' }]);
    expect((await call(addr, 'POST', '/v1/agents/sim-0/undrain')).body.state).toBe('up');
    await waitFor(async () => (await call(addr, 'GET', '/v1/jobs/web')).body.tasks.running === 1, 'web running on sim-0');
  });

  it('undrain of a lost, drained agent clears the mark and leaves it lost: it re-registers up', async () => {
    const { addr } = await fx.start({ heartbeatTimeoutMs: 300 });
    const first = agent(addr, 'sim-0');
    await first.whenRegistered();
    expect((await call(addr, 'POST', '/v1/agents/sim-0/drain')).body.state).toBe('draining');
    await first.stop();
    await waitFor(async () => (await states(addr))[0]?.[1] === 'lost', 'sim-0 lost');
    expect(await call(addr, 'POST', '/v1/agents/sim-0/undrain')).toMatchObject({ status: 200, body: { state: 'lost' } });
    await agent(addr, 'sim-0').whenRegistered();
    await waitFor(async () => (await states(addr))[0]?.[1] === 'up', 'sim-0 back, up');
  });
});
