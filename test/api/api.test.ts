/**
 * The HTTP API end to end over real sockets: an in-process master, its server on 127.0.0.1:0, and simulated
 * agents (the real protocol over the real WebSocket endpoint). Every route, and every bad input refused with its
 * status, stable code and field paths, leaving the job list unchanged.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SimulatedAgent } from '../../src/agent/index.js';
import { AGENT_SUBPROTOCOL } from '../../src/proto/index.js';
import { apiFixture, waitFor } from './helpers.js';

const fx = apiFixture();

const SPEC = {
  name: 'web',
  type: 'service',
  instances: 2,
  command: 'sleep 1000',
  resources: { cpus: 0.5, mem: '128Mi', ports: 1 },
  constraints: [{ attribute: 'zone', operator: '~', value: 'a|b' }],
};

interface Res {
  status: number;
  body: any;
  headers: Headers;
}

async function call(addr: string, method: string, path: string, body?: string, contentType = 'application/json'): Promise<Res> {
  const r = await fetch(`http://${addr}${path}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // text bodies (metrics)
  }
  return { status: r.status, body: parsed, headers: r.headers };
}

async function cluster(agents = 2) {
  const { master, api, addr } = await fx.start();
  const sims: SimulatedAgent[] = [];
  for (let i = 0; i < agents; i++) {
    const a = SimulatedAgent.start({
      master: addr,
      agentId: `sim-${i}`,
      resources: 'cpus=4,mem=4Gi,disk=10Gi',
      ports: `${31000 + i * 1000}-${31999 + i * 1000}`,
      attributes: `zone=${i === 0 ? 'a' : 'b'}`,
    });
    sims.push(a);
    fx.onCleanup(() => a.stop());
  }
  await Promise.all(sims.map((a) => a.whenRegistered()));
  return { master, api, addr, sims };
}

describe('routes', () => {
  it('serves every route over a real socket, with agents on the WebSocket endpoint', async () => {
    const { addr } = await cluster();

    expect(await call(addr, 'GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const agents = await call(addr, 'GET', '/v1/agents');
    expect(agents.status).toBe(200);
    expect(agents.body.agents.map((a: { id: string; state: string }) => [a.id, a.state])).toEqual([
      ['sim-0', 'up'],
      ['sim-1', 'up'],
    ]);

    const created = await call(addr, 'POST', '/v1/jobs', JSON.stringify(SPEC));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'web', state: 'running', spec: { instances: 2 } });

    await waitFor(async () => {
      const r = await call(addr, 'GET', '/v1/tasks?job=web');
      return r.body.tasks.filter((t: { state: string }) => t.state === 'running').length === 2;
    }, 'two running tasks');
    const tasks = (await call(addr, 'GET', '/v1/tasks?job=web')).body.tasks;
    for (const t of tasks) expect(t.endpoint).toMatch(/^127\.0\.0\.1:3\d{4}$/);
    expect((await call(addr, 'GET', '/v1/tasks')).body.tasks).toHaveLength(2);

    expect((await call(addr, 'GET', '/v1/jobs')).body.jobs.map((j: { name: string }) => j.name)).toEqual(['web']);
    expect((await call(addr, 'GET', '/v1/jobs/web')).body).toMatchObject({ name: 'web', tasks: { running: 2 } });

    const scaled = await call(addr, 'PATCH', '/v1/jobs/web', JSON.stringify({ instances: 3 }));
    expect(scaled).toMatchObject({ status: 200, body: { spec: { instances: 3 } } });
    await waitFor(async () => (await call(addr, 'GET', '/v1/jobs/web')).body.tasks.running === 3, 'three running');

    const c = await call(addr, 'GET', '/v1/cluster');
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ agents: { total: 2, up: 2 }, total: { cpus: 8, mem: 8192 }, used: { cpus: 1.5, mem: 384 }, jobs: 1 });

    const killed = await call(addr, 'POST', `/v1/tasks/${tasks[0].id}/kill`);
    expect(killed.status).toBe(200);
    expect(killed.body.id).toBe(tasks[0].id);
    await waitFor(async () => (await call(addr, 'GET', `/v1/tasks/${tasks[0].id}`)).body.state === 'killed', 'task killed');

    const drained = await call(addr, 'POST', '/v1/agents/sim-0/drain');
    expect(drained).toMatchObject({ status: 200, body: { id: 'sim-0', state: 'draining' } });

    const metrics = await call(addr, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(String(metrics.body)).toMatch(/^# HELP /m);

    const deleted = await call(addr, 'DELETE', '/v1/jobs/web');
    expect(deleted).toMatchObject({ status: 200, body: { name: 'web', state: 'killed' } });
    await waitFor(async () => (await call(addr, 'GET', '/v1/jobs/web')).body.tasks.running === undefined, 'no running task');
  });

  it('accepts a YAML job spec (application/yaml and text/yaml)', async () => {
    const { addr } = await cluster(1);
    const yaml = ['name: batchy', 'type: batch', 'instances: 1', 'command: ["true"]', 'resources:', '  cpus: 0.1', '  mem: 32Mi', ''].join('\n');
    const r = await call(addr, 'POST', '/v1/jobs', yaml, 'application/yaml');
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: 'batchy', spec: { type: 'batch', command: ['true'] } });
    const r2 = await call(addr, 'POST', '/v1/jobs', yaml.replace('batchy', 'batchy2'), 'text/yaml; charset=utf-8');
    expect(r2.status).toBe(201);
  });

  it('refuses a second job of the same name with 409', async () => {
    const { addr } = await cluster(1);
    expect((await call(addr, 'POST', '/v1/jobs', JSON.stringify({ ...SPEC, constraints: [] }))).status).toBe(201);
    expect(await call(addr, 'POST', '/v1/jobs', JSON.stringify(SPEC))).toMatchObject({ status: 409, body: { code: 'BRL_ERR_DUPLICATE_JOB' } });
  });
});

describe('bad input: refused with a stable code, state unchanged', () => {
  const paths = (body: { problems?: { path: string }[] }): string[] => (body.problems ?? []).map((p) => p.path).sort();

  it('lists every problem of a job spec by field path', async () => {
    const { addr } = await cluster(1);
    await call(addr, 'POST', '/v1/jobs', JSON.stringify({ ...SPEC, name: 'keep' }));
    const before = (await call(addr, 'GET', '/v1/jobs')).body;

    const cases: [string, unknown, string[]][] = [
      ['unknown fields', { ...SPEC, colour: 'red', resources: { ...SPEC.resources, bogus: 1 } }, ['colour', 'resources.bogus']],
      ['wrong types', { ...SPEC, instances: 'three', command: 42, env: { A: 1 } }, ['command', 'env.A', 'instances']],
      ['impossible resources', { ...SPEC, resources: { cpus: -1, mem: 'lots', ports: 1 } }, ['resources.cpus', 'resources.mem']],
      ['bad constraint operator', { ...SPEC, constraints: [{ attribute: 'zone', operator: 'like', value: 'a' }] }, ['constraints[0].operator']],
      ['bad regex', { ...SPEC, constraints: [{ attribute: 'zone', operator: '~', value: '([' }] }, ['constraints[0].value']],
      ['missing fields', { name: 'x' }, ['command', 'instances', 'resources', 'type']],
      ['a health check without a port', { ...SPEC, resources: { cpus: 1, mem: 64 }, healthCheck: { path: '/h' } }, ['healthCheck.portIndex']],
      [
        'bad http routes',
        { ...SPEC, resources: { cpus: 1, mem: 64, ports: 1 }, http: { hosts: ['ok.example', 'bad host!'], pathPrefix: 'api', portIndex: 1, weight: 0, tls: true } },
        ['http.hosts[1]', 'http.pathPrefix', 'http.portIndex', 'http.tls', 'http.weight'],
      ],
      ['http on a batch job', { ...SPEC, type: 'batch', resources: { cpus: 1, mem: 64, ports: 1 }, http: {} }, ['http']],
      ['not an object', [1, 2], ['']],
    ];
    for (const [what, spec, expected] of cases) {
      const r = await call(addr, 'POST', '/v1/jobs', JSON.stringify(spec));
      expect(r.status, what).toBe(400);
      expect(r.body.code, what).toBe('BRL_ERR_INVALID_JOB_SPEC');
      expect(typeof r.body.message, what).toBe('string');
      expect(paths(r.body), what).toEqual(expected);
    }
    expect((await call(addr, 'GET', '/v1/jobs')).body).toEqual(before);
  });

  it('refuses bodies it cannot read, unknown jobs, routes and methods', async () => {
    const { addr } = await fx.start({}, { bodyLimitBytes: 4096 });
    await call(addr, 'POST', '/v1/jobs', JSON.stringify({ ...SPEC, name: 'keep' }));
    const before = (await call(addr, 'GET', '/v1/jobs')).body;

    const expectError = async (r: Promise<Res>, status: number, code: string): Promise<Res> => {
      const res = await r;
      expect(res.status, code).toBe(status);
      expect(res.body.code).toBe(code);
      expect(typeof res.body.message).toBe('string');
      return res;
    };
    await expectError(call(addr, 'POST', '/v1/jobs', '{"name": "web",'), 400, 'BRL_ERR_MALFORMED_BODY');
    await expectError(call(addr, 'POST', '/v1/jobs', ''), 400, 'BRL_ERR_MALFORMED_BODY');
    await expectError(call(addr, 'POST', '/v1/jobs', 'name: [unclosed', 'application/yaml'), 400, 'BRL_ERR_MALFORMED_BODY');
    await expectError(call(addr, 'POST', '/v1/jobs', JSON.stringify(SPEC), 'text/plain'), 415, 'BRL_ERR_UNSUPPORTED_MEDIA_TYPE');
    await expectError(call(addr, 'POST', '/v1/jobs', JSON.stringify({ ...SPEC, env: { BIG: 'x'.repeat(10_000) } })), 413, 'BRL_ERR_PAYLOAD_TOO_LARGE');
    await expectError(call(addr, 'GET', '/v1/jobs/nope'), 404, 'BRL_ERR_UNKNOWN_JOB');
    await expectError(call(addr, 'PATCH', '/v1/jobs/nope', JSON.stringify({ instances: 2 })), 404, 'BRL_ERR_UNKNOWN_JOB');
    await expectError(call(addr, 'DELETE', '/v1/jobs/nope'), 404, 'BRL_ERR_UNKNOWN_JOB');
    await expectError(call(addr, 'GET', '/v1/tasks?job=nope'), 404, 'BRL_ERR_UNKNOWN_JOB');
    await expectError(call(addr, 'POST', '/v1/tasks/nope.0.0/kill'), 404, 'BRL_ERR_UNKNOWN_TASK');
    await expectError(call(addr, 'POST', '/v1/agents/nope/drain'), 404, 'BRL_ERR_UNKNOWN_AGENT');
    const badScale = await expectError(call(addr, 'PATCH', '/v1/jobs/keep', JSON.stringify({ instances: -1, extra: true })), 400, 'BRL_ERR_INVALID_ARGUMENT');
    expect(paths(badScale.body)).toEqual(['extra', 'instances']);
    await expectError(call(addr, 'PATCH', '/v1/jobs/keep', 'instances: 3', 'application/yaml'), 415, 'BRL_ERR_UNSUPPORTED_MEDIA_TYPE');
    await expectError(call(addr, 'GET', '/v1/nothing'), 404, 'BRL_ERR_NOT_FOUND');
    const wrong = await expectError(call(addr, 'PUT', '/v1/jobs'), 405, 'BRL_ERR_METHOD_NOT_ALLOWED');
    expect(wrong.headers.get('allow')).toBe('POST, GET, HEAD');
    await expectError(call(addr, 'DELETE', '/health'), 405, 'BRL_ERR_METHOD_NOT_ALLOWED');

    expect((await call(addr, 'GET', '/v1/jobs')).body).toEqual(before);
    expect((await call(addr, 'GET', '/health')).status).toBe(200); // the 413 did not take the server down
  });
});

describe('the agent WebSocket endpoint', () => {
  const tryConnect = (url: string, protocols?: string | string[]): Promise<{ opened: boolean; status?: number; protocol?: string }> =>
    new Promise((resolve) => {
      const ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
      ws.on('open', () => {
        const protocol = ws.protocol;
        ws.close();
        resolve({ opened: true, protocol });
      });
      ws.on('unexpected-response', (_req, res) => {
        resolve({ opened: false, status: res.statusCode ?? 0 });
        ws.terminate();
      });
      ws.on('error', () => resolve({ opened: false }));
    });

  it('selects borealis.agent.v1 and refuses other subprotocols and paths cleanly', async () => {
    const { addr } = await fx.start();
    expect(await tryConnect(`ws://${addr}/v1/agents/ws`, ['other', AGENT_SUBPROTOCOL])).toEqual({ opened: true, protocol: AGENT_SUBPROTOCOL });
    expect(await tryConnect(`ws://${addr}/v1/agents/ws`, 'chat.v2')).toEqual({ opened: false, status: 400 });
    expect(await tryConnect(`ws://${addr}/v1/agents/ws`)).toEqual({ opened: false, status: 400 });
    expect(await tryConnect(`ws://${addr}/v1/elsewhere`, AGENT_SUBPROTOCOL)).toEqual({ opened: false, status: 404 });
  });

  it('closes a socket that sends text frames with a protocol error', async () => {
    const { addr } = await fx.start();
    const code = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://${addr}/v1/agents/ws`, AGENT_SUBPROTOCOL);
      ws.on('open', () => ws.send('hello'));
      ws.on('close', (c) => resolve(c));
    });
    expect(code).toBe(1002);
  });
});
