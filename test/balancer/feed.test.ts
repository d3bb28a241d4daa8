/**
 * The balancer fed live by a real master: remotely through /v1/events (resume after a dropped stream, resync
 * after a master restart), and in-process from its bus (stats events on the bus, metrics in the master's /metrics).
 * Agents are simulated in-process; their task ports are real backends' ports, so traffic really flows.
 */
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Balancer, type RemoteFeed } from '../../src/balancer/index.js';
import type { Master } from '../../src/master/index.js';
import { SimAgent } from '../../src/master/testing/sim-agent.js';
import type { JobSpec } from '../../src/master/types.js';
import { apiFixture } from '../api/helpers.js';
import { type Backend, FRONT_ENDS, balancerFixture, frontEndOf, send, waitFor } from './helpers.js';

const api = apiFixture();

/** One simulated agent per backend, offering exactly that backend's port, with `cpus` cores (its weight). */
function agentsFor(backends: Backend[], cpus: number[], healthy: Map<string, boolean>): SimAgent[] {
  return backends.map(
    (b, i) =>
      new SimAgent({
        id: `agent-${b.name}`,
        cpusMilli: cpus[i] * 1000,
        ports: [{ begin: b.port, end: b.port }],
        onLaunch: (task, agent) => {
          agent.report(task.taskId!, 'starting');
          agent.report(task.taskId!, 'running', { healthy: healthy.get(task.taskId!) ?? true });
        },
      }),
  );
}

const web = (instances: number, extra: Partial<JobSpec> = {}): JobSpec => ({
  name: 'web',
  type: 'service',
  instances,
  command: ['sleep', '3600'],
  resources: { cpus: 0.5, mem: '64Mi', ports: 1 },
  healthCheck: { path: '/health' },
  http: { pathPrefix: '/' },
  ...extra,
});

function endpointIds(bal: Balancer): string[] {
  return [...(bal.registry.services.get('web')?.endpoints.keys() ?? [])].sort();
}

function runningIds(m: Master): string[] {
  return m
    .listTasks('web')
    .filter((t) => t.state === 'running' && t.healthy !== false)
    .map((t) => t.id)
    .sort();
}

describe.each(FRONT_ENDS)('feeds through the %s front end', (front) => {
  const fx = balancerFixture();

  it('follows a remote master: endpoints, weights, health, drain; resumes after a drop; resyncs from a new master', async () => {
    const dataDir = await api.tempDir();
    let { master, api: server, addr } = await api.start({ dataDir });
    const backends = await Promise.all(['b1', 'b2', 'b3'].map((n) => fx.backend(n)));
    const healthy = new Map<string, boolean>();
    const agents = agentsFor(backends, [1, 2, 4], healthy);
    fx.onCleanup(() => agents.forEach((a) => a.stop()));
    await Promise.all(agents.map((a) => a.connect(master)));

    const bal = new Balancer({ feed: { remote: addr }, listen: { host: '127.0.0.1', port: 0 }, frontEnd: frontEndOf(front), closeGraceMs: 200 });
    fx.onCleanup(() => bal.close());
    await bal.start();
    const feed = bal.feed as RemoteFeed;
    await feed.ready;
    expect(feed.resyncs).toBe(1);
    const c = fx.client();
    expect((await send(c, `${bal.url}/`)).status).toBe(404); // no service yet

    await master.submitJob(web(2));
    await waitFor(() => endpointIds(bal).length === 2 && runningIds(master).length === 2, 'two endpoints');
    expect(endpointIds(bal)).toEqual(runningIds(master));
    // Weights are the agents' cpus.
    for (const t of master.listTasks('web')) {
      const ep = bal.registry.byId.get(t.id)!;
      expect(bal.registry.table.weight[ep.slot]).toBe({ 'agent-b1': 1, 'agent-b2': 2, 'agent-b3': 4 }[t.agentId!]);
    }
    const r = await send(c, `${bal.url}/hello`);
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/^b[123] GET \/hello\n$/);

    // Health: an unhealthy task leaves the set, a healthy one returns.
    const [first] = master.listTasks('web').filter((t) => t.state === 'running');
    const agentOf = (id: string): SimAgent => agents.find((a) => a.tasks.has(id))!;
    agentOf(first.id).report(first.id, 'running', { healthy: false });
    await waitFor(() => !bal.registry.byId.has(first.id), 'the unhealthy task to leave');
    agentOf(first.id).report(first.id, 'running', { healthy: true });
    await waitFor(() => bal.registry.byId.has(first.id), 'the healthy task to return');

    // The stream drops; what happens meanwhile arrives on resume, with no resync.
    feed.dropConnection();
    await master.scaleJob('web', 3);
    await waitFor(() => endpointIds(bal).length === 3 && runningIds(master).length === 3, 'three endpoints after resume');
    expect(endpointIds(bal)).toEqual(runningIds(master));
    expect(feed.resyncs).toBe(1);
    expect(feed.connects).toBeGreaterThanOrEqual(2);

    // A killed task drains at once and leaves when the agent reports it killed.
    const victim = runningIds(master)[0];
    await master.killTask(victim);
    await waitFor(() => !bal.registry.byId.has(victim), 'the killed task to leave');

    // The master restarts on the same data dir: the stream resumes (same epoch) or resyncs; either way the
    // endpoints end up matching the master's tasks.
    const port = server.address.port;
    await api.stop(master, server);
    ({ master, api: server } = await api.start({ dataDir }, { port }));
    await Promise.all(agents.map((a) => a.connect(master)));
    // A re-registration carries no health verdict: the tasks count as unhealthy until their next check passes.
    await waitFor(() => master.listTasks('web').filter((t) => t.state === 'running').length === 3, 'the tasks to be reconciled');
    for (const a of agents) for (const id of a.tasks.keys()) a.report(id, 'running', { healthy: true });
    await waitFor(() => runningIds(master).length === 3 && endpointIds(bal).join() === runningIds(master).join(), 'the endpoints to match the restarted master');
    expect((await send(c, `${bal.url}/again`)).status).toBe(200);

    // A different master (another epoch, no jobs) at the same address: the balancer resynchronises from its
    // snapshot and the service is gone.
    const resyncs = feed.resyncs;
    await api.stop(master, server);
    ({ master, api: server } = await api.start({}, { port }));
    await waitFor(() => feed.resyncs === resyncs + 1, 'a resync from the new master');
    expect(bal.registry.services.size).toBe(0);
    expect((await send(c, `${bal.url}/again`)).status).toBe(404);
  });

  it('runs inside a master: stats on its bus, metrics in its /metrics', async () => {
    const { master, addr } = await api.start();
    const backends = await Promise.all(['b1', 'b2'].map((n) => fx.backend(n)));
    const agents = agentsFor(backends, [2, 2], new Map());
    fx.onCleanup(() => agents.forEach((a) => a.stop()));
    await Promise.all(agents.map((a) => a.connect(master)));
    await master.submitJob(web(2, { healthCheck: undefined, http: { hosts: ['web.test'], weight: 3 } }));
    await waitFor(() => runningIds(master).length === 2, 'two running tasks');

    // Started after the job: it loads the master's current state, then follows its bus.
    const bal = new Balancer({ feed: { master }, listen: { host: '127.0.0.1', port: 0 }, frontEnd: frontEndOf(front), statsIntervalMs: 50, closeGraceMs: 200 });
    fx.onCleanup(() => bal.close());
    await bal.start();
    expect(endpointIds(bal)).toEqual(runningIds(master));
    const stats: unknown[] = [];
    master.events.subscribe((e) => e.type === 'balancer_stats' && stats.push(e.data));
    const c = fx.client();
    for (let i = 0; i < 4; i++) expect((await send(c, `${bal.url}/`, { headers: { host: 'web.test' } })).status).toBe(200);
    await waitFor(() => stats.some((s) => (s as { services: { requests: number }[] }).services[0]?.requests > 0), 'a stats event with requests');
    expect(stats[stats.length - 1]).toMatchObject({
      balancer: `127.0.0.1:${bal.address!.port}`,
      services: [{ name: 'web', endpoints: [{ weight: 3, state: 'up' }, { weight: 3, state: 'up' }] }],
    });
    // Equal weights and sequential requests: the instances answer in turn.
    expect(backends.map((b) => b.received.length)).toEqual([2, 2]);
    const text = await (await request(`http://${addr}/metrics`)).body.text();
    expect(text).toMatch(/borealis_balancer_service_requests_total\{service="web"\} 4/);
    expect(text).toContain('borealis_placements_total');
  });
});
