/**
 * Starting endpoints: a task becomes an endpoint when its process runs, perhaps before it listens. Refusals from
 * an endpoint that never answered are not ejected within the startup grace, the endpoint is skipped for a short
 * hold while others can serve, and a retry prefers an endpoint that has answered; once it listens it gets traffic.
 */
import { type Server, createServer } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EndpointRegistry, FULL_SCAN_MAX, pick } from '../../src/balancer/index.js';
import { OutlierDetector, REFUSED_HOLD_MS, STARTUP_GRACE_MS } from '../../src/balancer/outlier.js';
import { ERROR_KINDS, ErrorKindIndex } from '../../src/balancer/types.js';
import { balancerFixture, FakeMaster, type Fixture, FRONT_ENDS, send, waitFor } from './helpers.js';

function registryWith(n: number): { reg: EndpointRegistry; slots: number[] } {
  const reg = new EndpointRegistry();
  reg.setService('s', {});
  const slots = Array.from({ length: n }, (_, i) => reg.upsert('s', { id: `e${i}`, host: '127.0.0.1', port: 1000 + i, weight: 1 })!.slot);
  return { reg, slots };
}

describe('starting endpoints in the picker and outlier detection', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a retry to a proven endpoint, and to a starting one only when no proven one is left', () => {
    const { reg, slots } = registryWith(4);
    const s = reg.services.get('s')!;
    const t = reg.table;
    t.proven[slots[0]] = 1;
    t.proven[slots[1]] = 1;
    // The starting ones are idle and never picked, so a plain pick prefers them; a retry does not.
    t.active[slots[0]] = 3;
    t.active[slots[1]] = 5;
    expect(pick(s, t, slots[2])).toBe(slots[0]);
    expect(pick(s, t, slots[0])).toBe(slots[1]);
    expect([slots[2], slots[3]]).toContain(pick(s, t));
    // Only one proven member and it is the one retried from: a starting one is better than none.
    t.proven[slots[1]] = 0;
    expect([slots[1], slots[2], slots[3]]).toContain(pick(s, t, slots[0]));
  });

  it('skips a held endpoint while another can take the request, and picks it when none can', () => {
    const { reg, slots } = registryWith(3);
    const s = reg.services.get('s')!;
    const t = reg.table;
    const until = Date.now() + 60_000;
    t.heldUntil[slots[0]] = until;
    t.heldUntil[slots[1]] = until;
    s.heldUntil = until;
    t.active[slots[2]] = 10; // busiest, but the only one not held
    for (let i = 0; i < 5; i++) expect(pick(s, t)).toBe(slots[2]);
    expect([slots[0], slots[1]]).toContain(pick(s, t, slots[2]));
    // Holds that have passed are ignored, and the service stops reading the clock for them.
    const past = Date.now() - 1;
    t.heldUntil[slots[0]] = past;
    t.heldUntil[slots[1]] = past;
    s.heldUntil = past;
    expect([slots[0], slots[1]]).toContain(pick(s, t));
    expect(s.heldUntil).toBe(0);
  });

  it('keeps the filters with two random choices above FULL_SCAN_MAX', () => {
    const n = FULL_SCAN_MAX * 2;
    const { reg, slots } = registryWith(n);
    const s = reg.services.get('s')!;
    const t = reg.table;
    // All but two are starting and held; a pick lands on one of the two whatever the draw.
    const until = Date.now() + 60_000;
    for (const x of slots) t.heldUntil[x] = until;
    s.heldUntil = until;
    t.heldUntil[slots[5]] = 0;
    t.heldUntil[slots[40]] = 0;
    t.proven[slots[40]] = 1;
    for (let i = 0; i < 500; i++) expect([slots[5], slots[40]]).toContain(pick(s, t));
    // A retry from 40 has no proven member left: the other one not held.
    for (let i = 0; i < 200; i++) expect(pick(s, t, slots[40])).toBe(slots[5]);
  });

  it('does not eject a starting endpoint for refusals within the grace, ejects it past the grace, and an answer proves it', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { reg, slots } = registryWith(4);
    const events: string[] = [];
    const od = new OutlierDetector(reg, { consecutiveFailures: 1, maxEjectionPercent: 100 }, (e) => events.push(`${e.kind} ${e.endpoint.id}`));
    const [e0, e1, e2] = ['e0', 'e1', 'e2'].map((id) => reg.byId.get(id)!);
    const s = reg.services.get('s')!;
    for (let i = 0; i < 20; i++) od.refused(e0);
    expect(reg.stateOf(e0)).toBe('starting');
    expect(reg.table.heldUntil[slots[0]]).toBe(Date.now() + REFUSED_HOLD_MS);
    expect(s.heldUntil).toBe(Date.now() + REFUSED_HOLD_MS);

    // An answer (even a 5xx, which fails as usual then) proves it: no more hold, no more grace.
    od.answered(slots[1]);
    od.refused(e1);
    expect(reg.stateOf(e1)).toBe('ejected');
    expect(reg.table.heldUntil[slots[1]]).toBe(0);
    od.refused(e2);
    od.success(slots[2]);
    expect(reg.table.proven[slots[2]]).toBe(1);
    expect(reg.table.heldUntil[slots[2]]).toBe(0);

    // Still refusing past the grace: a task that never listens is ejected by the usual rule.
    vi.setSystemTime(Date.now() + STARTUP_GRACE_MS + 1);
    od.refused(e0);
    expect(reg.stateOf(e0)).toBe('ejected');
    expect(events).toEqual(['ejected e1', 'ejected e0']);
    await reg.close();
  });
});

/** A port nothing listens on yet (bound, then released), and a server to start on it later: a booting task. */
async function startingBackend(fx: Fixture, name: string): Promise<{ port: number; received: () => number; listen: () => Promise<void> }> {
  const probe = await fx.backend(`${name}-probe`);
  await probe.kill();
  let count = 0;
  let server: Server | null = null;
  fx.onCleanup(async () => {
    if (server?.listening) {
      server.closeAllConnections();
      await new Promise<void>((r) => server!.close(() => r()));
    }
  });
  return {
    port: probe.port,
    received: () => count,
    listen: async () => {
      server = createServer((req, res) => {
        count++;
        res.end(`${name} ${req.method} ${req.url}\n`);
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(probe.port, '127.0.0.1', () => resolve());
      });
    },
  };
}

describe.each(FRONT_ENDS)('starting endpoints through the %s front end', (front) => {
  const fx = balancerFixture();

  it('scaling up: no 502 while the new instances refuse, they stay in, and get traffic once they listen', async () => {
    const a = await fx.backend('a');
    const b = await fx.backend('b');
    const master = new FakeMaster();
    // One refusal would eject a proven endpoint here: the starting ones must be spared by the grace, not the count.
    const bal = await fx.balancer(front, { feed: { master }, outlier: { consecutiveFailures: 1, maxEjectionPercent: 100 } });
    master.service('web');
    master.running('web', 'web.0.0', a.port);
    master.running('web', 'web.1.0', b.port);
    const c = fx.client();
    for (let i = 0; i < 4; i++) expect((await send(c, `${bal.url}/warm`)).status).toBe(200);
    expect(a.received.length > 0 && b.received.length > 0).toBe(true);

    const starting = [await startingBackend(fx, 'c'), await startingBackend(fx, 'd')];
    master.running('web', 'web.2.0', starting[0].port);
    master.running('web', 'web.3.0', starting[1].port);
    const ids = ['web.2.0', 'web.3.0'];
    const eps = ids.map((id) => bal.registry.byId.get(id)!);
    const statuses = new Map<number, number>();
    const count = (status: number): void => void statuses.set(status, (statuses.get(status) ?? 0) + 1);

    for (let i = 0; i < 30; i++) count((await send(c, `${bal.url}/seq`)).status);
    let left = 160;
    const worker = async (): Promise<void> => {
      while (left-- > 0) count((await send(c, `${bal.url}/par`)).status);
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect([...statuses]).toEqual([[200, 190]]);
    // The new endpoints were tried (refused) and are still in, not ejected.
    const table = bal.registry.table;
    expect(eps.every((ep) => table.errors[ep.slot * ERROR_KINDS.length + ErrorKindIndex.connect] > 0)).toBe(true);
    expect(eps.map((ep) => [bal.registry.stateOf(ep), ep.ejectedTimes, table.proven[ep.slot]])).toEqual([
      ['starting', 0, 0],
      ['starting', 0, 0],
    ]);

    await Promise.all(starting.map((s) => s.listen()));
    await waitFor(async () => {
      expect((await send(c, `${bal.url}/after`)).status).toBe(200);
      return starting.every((s) => s.received() > 0);
    }, 'traffic on the new instances');
    expect(eps.map((ep) => table.proven[ep.slot])).toEqual([1, 1]);
    // Stats and /metrics show them as up now (starting until their first answer).
    expect(eps.map((ep) => bal.registry.stateOf(ep))).toEqual(['up', 'up']);
  });

  it('answers 502 as before when only starting endpoints refuse, without ejecting them', async () => {
    const starting = [await startingBackend(fx, 'c'), await startingBackend(fx, 'd')];
    const master = new FakeMaster();
    const bal = await fx.balancer(front, { feed: { master }, outlier: { consecutiveFailures: 1, maxEjectionPercent: 100 } });
    master.service('web');
    master.running('web', 'web.0.0', starting[0].port);
    master.running('web', 'web.1.0', starting[1].port);
    const c = fx.client();
    for (let i = 0; i < 4; i++) {
      const r = await send(c, `${bal.url}/x`);
      expect(r.status).toBe(502);
      expect(r.headers['x-borealis-error']).toBe('connect');
      expect(r.body).toMatch(/^502 Bad Gateway: cannot connect to the endpoint 127\.0\.0\.1:\d+ \(ECONNREFUSED\)\n$/);
    }
    expect(['web.0.0', 'web.1.0'].map((id) => bal.registry.stateOf(bal.registry.byId.get(id)!))).toEqual(['starting', 'starting']);
    // Concurrent requests too: each gets its 502, none hangs.
    const rs = await Promise.all(Array.from({ length: 8 }, () => send(c, `${bal.url}/y`)));
    expect(rs.map((r) => r.status)).toEqual(new Array<number>(8).fill(502));
  });
});
