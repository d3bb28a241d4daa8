/**
 * Endpoints that go away: drain on task_killing, removal on a terminal state, a killed backend's requests retried
 * elsewhere (safe methods only), outlier ejection and its cap, and the 502/503/504 answers.
 */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { STATIC_SERVICE } from '../../src/balancer/index.js';
import { balancerFixture, FakeMaster, FRONT_ENDS, holdingHandler, send, waitFor } from './helpers.js';

/** A port nothing listens on: bound then released by a throwaway server. */
async function deadPort(fx: ReturnType<typeof balancerFixture>): Promise<number> {
  const b = await fx.backend('dead');
  await b.kill();
  return b.port;
}

describe.each(FRONT_ENDS)('failures through the %s front end', (front) => {
  const fx = balancerFixture();

  it('drains a task being killed: its in-flight request finishes, no new request reaches it, and it leaves when killed', async () => {
    const held: ServerResponse[] = [];
    const handler = holdingHandler(held);
    const a = await fx.backend('a', handler);
    const b = await fx.backend('b', handler);
    const master = new FakeMaster();
    const bal = await fx.balancer(front, { feed: { master } });
    master.service('web');
    master.running('web', 'web.0.0', a.port);
    master.running('web', 'web.1.0', b.port);
    const c = fx.client();
    // One held request on each endpoint (least-connections sends the second to the idle one).
    const slow = [send(c, `${bal.url}/hold`), send(c, `${bal.url}/hold`)];
    await waitFor(() => held.length === 2, 'two held requests');
    expect(a.received).toHaveLength(1);

    master.publish({ type: 'task_killing', job: 'web', taskId: 'web.0.0', agentId: 'a1', data: { reason: 'scaled down' } });
    for (let i = 0; i < 5; i++) expect((await send(c, `${bal.url}/x`)).body).toBe('b\n');
    expect(a.received.map((r) => r.url)).toEqual(['/hold']);
    expect(bal.registry.stateOf(bal.registry.byId.get('web.0.0')!)).toBe('draining');

    for (const r of held) r.end('finished\n');
    expect((await Promise.all(slow)).map((r) => [r.status, r.body])).toEqual([
      [200, 'finished\n'],
      [200, 'finished\n'],
    ]);
    master.publish({ type: 'task_state', job: 'web', taskId: 'web.0.0', state: 'killed', data: { from: 'running' } });
    expect(bal.registry.byId.has('web.0.0')).toBe(false);
    // A lost task goes at once too; the service then has no endpoint: 503 with a body.
    master.publish({ type: 'task_state', job: 'web', taskId: 'web.1.0', state: 'lost', data: { from: 'running' } });
    const none = await send(c, `${bal.url}/x`);
    expect(none.status).toBe(503);
    expect(none.headers['x-borealis-error']).toBe('no_endpoint');
    expect(none.body).toBe('503 Service Unavailable: service web has no endpoint to take this request\n');
  });

  it('retries a killed backend\'s GETs on another endpoint, ejects it, and never retries a POST whose body was sent', async () => {
    // `a` reads each request's body, then drops the connection without answering (a crash mid-request).
    const a = await fx.backend('a', (req) => req.on('end', () => req.socket.destroy()).resume());
    const b = await fx.backend('b');
    const bal = await fx.balancer(front, {
      feed: { static: [{ id: 'a', host: '127.0.0.1', port: a.port, weight: 1 }, { id: 'b', host: '127.0.0.1', port: b.port, weight: 1 }] },
      outlier: { consecutiveFailures: 3, maxEjectionPercent: 50 },
    });
    const c = fx.client();

    const post = await send(c, `${bal.url}/order`, { method: 'POST', body: 'pay 10 EUR', headers: { 'content-type': 'text/plain' } });
    expect(post.status).toBe(502);
    expect(post.headers['x-borealis-error']).toBe('reset');
    expect(post.body).toContain('closed the connection without a response');
    expect(a.received.map((r) => [r.method, r.bodyBytes])).toEqual([['POST', 10]]);
    expect(b.received).toHaveLength(0);

    // GETs that land on `a` fail the same way and are retried once on `b`: every client sees a 200.
    for (let i = 0; i < 6; i++) expect((await send(c, `${bal.url}/get`)).body).toBe('b GET /get\n');
    const ep = bal.registry.byId.get('a')!;
    expect(bal.registry.stateOf(ep)).toBe('ejected');
    expect(ep.ejectedTimes).toBe(1);
    const metrics = await bal.metrics.registry.metrics();
    expect(metrics).toContain(`borealis_balancer_ejections_total{service="${STATIC_SERVICE}",endpoint="a"} 1`);
    expect(metrics).toMatch(/borealis_balancer_errors_total\{service="static",endpoint="a",kind="reset"\} [1-9]/);
    const stats = bal.metrics.snapshot('t')!;
    expect(stats.services[0].endpoints.find((e) => e.id === 'a')).toMatchObject({ state: 'ejected', ejections: 1 });

    // Now killed outright: connections refused. Ejected endpoints get no traffic; b answers everything.
    await a.kill();
    const before = a.received.length;
    for (let i = 0; i < 4; i++) expect((await send(c, `${bal.url}/get`)).status).toBe(200);
    expect(a.received.length).toBe(before);
  });

  it('ejects at most the configured share of a service, at least one', async () => {
    const dead = await Promise.all(['dead0', 'dead1', 'dead2'].map((n) => fx.backend(n)));
    const ok = await Promise.all(['o1', 'o2', 'o3'].map((n) => fx.backend(n)));
    const bal = await fx.balancer(front, {
      feed: { static: [...dead, ...ok].map((b) => ({ id: b.name, host: '127.0.0.1', port: b.port, weight: 1 })) },
      // 6 endpoints at 20%: at most one ejected at a time.
      outlier: { consecutiveFailures: 1, maxEjectionPercent: 20 },
    });
    const c = fx.client();
    // Every endpoint answers once before the `dead` ones die: refusals from one that never answered would be a
    // task still starting, which is not ejected (starting.test.ts).
    await waitFor(async () => (await send(c, `${bal.url}/`)) && [...dead, ...ok].every((b) => b.received.length > 0), 'an answer from each');
    await Promise.all(dead.map((b) => b.kill()));
    // (With half the endpoints dead, a request and its one retry can both land on dead ones: a 502.)
    const statuses = new Set<number>();
    for (let i = 0; i < 30; i++) statuses.add((await send(c, `${bal.url}/`)).status);
    expect([...statuses].every((s) => s === 200 || s === 502)).toBe(true);
    const states = ['dead0', 'dead1', 'dead2'].map((id) => bal.registry.stateOf(bal.registry.byId.get(id)!));
    expect(states.filter((s) => s === 'ejected')).toHaveLength(1);
    expect(bal.outlier.skipped).toBeGreaterThan(0);
  });

  it('answers 502 when no endpoint can be reached, 504 when one is too slow, each with a body', async () => {
    const port = await deadPort(fx);
    const silent = await fx.backend('silent', () => undefined);
    const refused = await fx.balancer(front, { feed: { static: [{ id: 'x', host: '127.0.0.1', port, weight: 1 }] } });
    const c = fx.client();
    const r502 = await send(c, `${refused.url}/`);
    expect(r502.status).toBe(502);
    expect(r502.headers['x-borealis-error']).toBe('connect');
    expect(r502.body).toBe(`502 Bad Gateway: cannot connect to the endpoint 127.0.0.1:${port} (ECONNREFUSED)\n`);

    const slow = await fx.balancer(front, {
      feed: { static: [{ id: 's', host: '127.0.0.1', port: silent.port, weight: 1 }] },
      timeouts: { headersMs: 200 },
    });
    const r504 = await send(c, `${slow.url}/`);
    expect(r504.status).toBe(504);
    expect(r504.headers['x-borealis-error']).toBe('headers_timeout');
    expect(r504.body).toBe(`504 Gateway Timeout: the endpoint 127.0.0.1:${silent.port} did not start its response in time\n`);
    // A timed-out request is not retried (it may still be running there).
    expect(silent.received).toHaveLength(1);
  });

  it('cuts the client off when an endpoint stalls mid-body (the status already went out)', async () => {
    const stall = await fx.backend('stall', (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const bal = await fx.balancer(front, {
      feed: { static: [{ id: 's', host: '127.0.0.1', port: stall.port, weight: 1 }] },
      timeouts: { bodyIdleMs: 200 },
    });
    const r = await send(fx.client(), `${bal.url}/`).catch((e: Error & { code?: string }) => e);
    expect(r).toBeInstanceOf(Error);
    await waitFor(() => bal.registry.table.active[bal.registry.byId.get('s')!.slot] === 0, 'the attempt to end');
    const stats = bal.metrics.snapshot('t')!;
    expect(stats.services[0].endpoints[0].errors).toMatchObject({ body_timeout: 1 });
  });
});
