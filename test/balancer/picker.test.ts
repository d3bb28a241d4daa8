/** Weighted least-connections: the picker on its own, then its choices through each front end. */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { EndpointRegistry, FULL_SCAN_MAX, STATIC_SERVICE, pick } from '../../src/balancer/index.js';
import { balancerFixture, FRONT_ENDS, holdingHandler, send, waitFor } from './helpers.js';

function registryWith(weights: number[]): { reg: EndpointRegistry; slots: number[] } {
  const reg = new EndpointRegistry();
  reg.setService('s', {});
  const slots = weights.map((w, i) => reg.upsert('s', { id: `e${i}`, host: '127.0.0.1', port: 1000 + i, weight: w })!.slot);
  return { reg, slots };
}

describe('pick', () => {
  it('takes the smallest (active + 1) / weight, and the least recently picked among equals', () => {
    const { reg, slots } = registryWith([1, 1, 2]);
    const s = reg.services.get('s')!;
    const t = reg.table;
    // Idle: the weight-2 endpoint scores 1/2, the others 1.
    expect(pick(s, t)).toBe(slots[2]);
    t.active[slots[2]] = 1; // now 2/2 = 1: a three-way tie, which goes to the two never picked, in turn
    const a = pick(s, t);
    const b = pick(s, t);
    expect(new Set([a, b])).toEqual(new Set([slots[0], slots[1]]));
    expect(pick(s, t)).toBe(slots[2]);
    t.active[slots[0]] = 5;
    t.active[slots[1]] = 0;
    t.active[slots[2]] = 2; // scores: 6, 1, 1.5
    expect(pick(s, t)).toBe(slots[1]);
    expect(pick(s, t, slots[1])).toBe(slots[2]);
  });

  it('shares equal endpoints exactly evenly when idle', () => {
    const { reg, slots } = registryWith([1, 1, 1, 1]);
    const s = reg.services.get('s')!;
    const counts = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const p = pick(s, reg.table);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    expect(slots.map((x) => counts.get(x))).toEqual([100, 100, 100, 100]);
  });

  it('uses two random choices above FULL_SCAN_MAX, and never the excluded slot', () => {
    const n = FULL_SCAN_MAX * 2;
    const { reg, slots } = registryWith(new Array<number>(n).fill(1));
    const s = reg.services.get('s')!;
    // Every endpoint but one is loaded: with two choices the idle one wins whenever it is drawn, never always.
    for (const x of slots) reg.table.active[x] = 10;
    reg.table.active[slots[7]] = 0;
    let idle = 0;
    for (let i = 0; i < 2000; i++) {
      const p = pick(s, reg.table, slots[3]);
      expect(p).not.toBe(slots[3]);
      if (p === slots[7]) idle++;
    }
    // Drawn in ~2/64 of pairs (≈ 62 of 2000): far from all, far from none.
    expect(idle).toBeGreaterThan(10);
    expect(idle).toBeLessThan(400);
  });

  it('answers -1 for an empty service or one whose only member is excluded', () => {
    const { reg, slots } = registryWith([1]);
    const s = reg.services.get('s')!;
    expect(pick(s, reg.table, slots[0])).toBe(-1);
    reg.remove('e0');
    expect(pick(s, reg.table)).toBe(-1);
  });

  it('keeps active counts in a SharedArrayBuffer when asked', () => {
    const reg = new EndpointRegistry({ shared: true });
    reg.setService('s', {});
    const ep = reg.upsert('s', { id: 'a', host: '127.0.0.1', port: 1, weight: 1 })!;
    expect(reg.table.active.buffer).toBeInstanceOf(SharedArrayBuffer);
    reg.table.acquire(ep.slot);
    reg.table.acquire(ep.slot);
    expect(reg.table.release(ep.slot)).toBe(1);
    expect(Atomics.load(reg.table.active, ep.slot)).toBe(1);
  });
});

describe.each(FRONT_ENDS)('balancing through the %s front end', (front) => {
  const fx = balancerFixture();

  it('sends new requests to the idle endpoint while the other is busy', async () => {
    const held: ServerResponse[] = [];
    const handler = holdingHandler(held);
    const a = await fx.backend('a', handler);
    const b = await fx.backend('b', handler);
    const bal = await fx.balancer(front, {
      feed: { static: [{ id: 'a', host: '127.0.0.1', port: a.port, weight: 1 }, { id: 'b', host: '127.0.0.1', port: b.port, weight: 1 }] },
    });
    const c = fx.client();
    const slow = send(c, `${bal.url}/hold`);
    await waitFor(() => held.length === 1, 'the held request');
    const busy = a.received.length === 1 ? a : b;
    const idle = busy === a ? b : a;
    for (let i = 0; i < 6; i++) expect((await send(c, `${bal.url}/x`)).body).toBe(`${idle.name}\n`);
    expect(busy.received.map((r) => r.url)).toEqual(['/hold']);
    held[0].end('done\n');
    expect((await slow).body).toBe('done\n');
  });

  it('honours weights: shares follow 1:2:3 under concurrent load', async () => {
    // Every answer takes the same time, so an endpoint's share is its share of the requests in flight.
    const slowEcho = (_req: unknown, res: ServerResponse, b: { name: string }): void => {
      setTimeout(() => res.end(`${b.name}\n`), 15);
    };
    const bs = await Promise.all(['w1', 'w2', 'w3'].map((n) => fx.backend(n, slowEcho)));
    const bal = await fx.balancer(front, {
      feed: { static: bs.map((b, i) => ({ id: b.name, host: '127.0.0.1', port: b.port, weight: i + 1 })) },
    });
    const c = fx.client();
    const total = 600;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next++ < total) expect((await send(c, `${bal.url}/`)).status).toBe(200);
    };
    await Promise.all(Array.from({ length: 24 }, worker));
    const shares = bs.map((b) => b.received.length / total);
    expect(shares.reduce((x, y) => x + y, 0)).toBeCloseTo(1);
    // Ideal 1/6, 2/6, 3/6; generous bounds for a loaded CI box.
    expect(shares[0]).toBeGreaterThan(0.08);
    expect(shares[0]).toBeLessThan(0.25);
    expect(shares[1]).toBeGreaterThan(0.22);
    expect(shares[1]).toBeLessThan(0.42);
    expect(shares[2]).toBeGreaterThan(0.4);
    expect(shares[2]).toBeLessThan(0.6);
    expect(bal.registry.services.get(STATIC_SERVICE)!.requests).toBe(total);
  });
});
