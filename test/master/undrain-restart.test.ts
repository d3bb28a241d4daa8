/**
 * Drain and undrain are journaled: after a master restart (same data dir), an agent drained before it
 * re-registers draining and one whose drain was lifted re-registers up, whether the restarted master reads them
 * from the journal's tail or from a compaction snapshot. Real master, real HTTP on 127.0.0.1:0, simulated
 * agents on the WebSocket endpoint.
 */
import { describe, expect, it } from 'vitest';
import { SimulatedAgent } from '../../src/agent/index.js';
import { apiFixture, waitFor } from '../api/helpers.js';

const fx = apiFixture();

async function post(addr: string, path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://${addr}${path}`, { method: 'POST' });
  return { status: r.status, body: (await r.json()) as unknown };
}

async function agentStates(addr: string): Promise<Record<string, string>> {
  const r = await fetch(`http://${addr}/v1/agents`);
  const { agents } = (await r.json()) as { agents: { id: string; state: string }[] };
  return Object.fromEntries(agents.map((a) => [a.id, a.state]));
}

async function startAgents(addr: string, ids: string[]): Promise<SimulatedAgent[]> {
  const sims = ids.map((id, i) =>
    SimulatedAgent.start({ master: addr, agentId: id, resources: 'cpus=2,mem=2Gi,disk=10Gi', ports: `${31000 + i * 1000}-${31999 + i * 1000}` }),
  );
  for (const s of sims) fx.onCleanup(() => s.stop());
  await Promise.all(sims.map((s) => s.whenRegistered()));
  return sims;
}

describe('undrain across a master restart', () => {
  // compactEvery 1: every change also lands in a snapshot, so the restart reads the drained set from it.
  for (const [how, compactEvery] of [['the journal tail', undefined], ['a snapshot', 1]] as const) {
    it(`keeps drained agents draining and undrained ones up (from ${how})`, async () => {
      const dataDir = await fx.tempDir();
      const opts = compactEvery === undefined ? { dataDir } : { dataDir, compactEvery };
      const first = await fx.start(opts);
      const sims = await startAgents(first.addr, ['a', 'b', 'c']);
      for (const id of ['a', 'b', 'c']) expect((await post(first.addr, `/v1/agents/${id}/drain`)).body.state).toBe('draining');
      expect((await post(first.addr, '/v1/agents/b/undrain')).body.state).toBe('up');
      // Undrain, then drain again: the last word counts.
      expect((await post(first.addr, '/v1/agents/c/undrain')).body.state).toBe('up');
      expect((await post(first.addr, '/v1/agents/c/drain')).body.state).toBe('draining');
      expect(await agentStates(first.addr)).toEqual({ a: 'draining', b: 'up', c: 'draining' });
      for (const s of sims) await s.stop();
      await fx.stop(first.master, first.api);

      const second = await fx.start(opts);
      await startAgents(second.addr, ['a', 'b', 'c']);
      expect(await agentStates(second.addr)).toEqual({ a: 'draining', b: 'up', c: 'draining' });

      // The restarted master places only on the undrained agent, until another is undrained.
      const job = { name: 'web', type: 'service', instances: 2, command: 'sleep 1000', resources: { cpus: 1, mem: '128Mi' } };
      const created = await fetch(`http://${second.addr}/v1/jobs`, { method: 'POST', body: JSON.stringify(job), headers: { 'content-type': 'application/json' } });
      expect(created.status).toBe(201);
      const tasks = async (): Promise<{ state: string; agentId?: string }[]> =>
        ((await (await fetch(`http://${second.addr}/v1/tasks?job=web`)).json()) as { tasks: { state: string; agentId?: string }[] }).tasks;
      await waitFor(async () => (await tasks()).every((t) => t.state === 'running'), 'web running');
      expect((await tasks()).map((t) => t.agentId)).toEqual(['b', 'b']);
      expect((await post(second.addr, '/v1/agents/a/undrain')).body.state).toBe('up');
      expect(await agentStates(second.addr)).toEqual({ a: 'up', b: 'up', c: 'draining' });
    });
  }
});
