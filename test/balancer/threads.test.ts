/**
 * Several proxy threads on one port (uWebSockets.js, SO_REUSEPORT): both threads serve, least-connections counts
 * the requests in flight on every thread (shared counters), figures add up in the main thread, and close() stops
 * every thread and frees the port.
 */
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { STATIC_SERVICE } from '../../src/balancer/index.js';
import { ThreadedBalancer } from '../../src/balancer/threads.js';
import { balancerFixture, holdingHandler, send, UWS, waitFor } from './helpers.js';

describe.skipIf(UWS === null)('a balancer with two threads', () => {
  const fx = balancerFixture();

  it('serves from both threads, sees the other thread\'s request in flight, adds up figures, and stops cleanly', async () => {
    const held: ServerResponse[] = [];
    const handler = holdingHandler(held);
    const a = await fx.backend('a', handler);
    const b = await fx.backend('b', handler);
    const bal = new ThreadedBalancer({
      threads: 2,
      feed: { static: [{ id: 'a', host: '127.0.0.1', port: a.port, weight: 1 }, { id: 'b', host: '127.0.0.1', port: b.port, weight: 1 }] },
      listen: { host: '127.0.0.1', port: 0 },
      closeGraceMs: 200,
    });
    let closed = false;
    fx.onCleanup(async () => {
      if (!closed) await bal.close();
    });
    await bal.start();
    const c = fx.client();

    // One request held open on whichever thread took its connection.
    const slow = send(c, `${bal.url}/hold`);
    await waitFor(() => held.length === 1, 'the held request');
    const busy = a.received.length === 1 ? a : b;
    const idle = busy === a ? b : a;
    expect(bal.activeOf(bal.registry.byId.get(busy.name)!)).toBe(1);

    // Fresh connections land on both threads (the kernel hashes them); every request, on either thread, goes to
    // the idle endpoint: the other thread's request counts there too. (Each waits until the previous one is
    // released: a response reaches the client just before its thread releases the endpoint, so without the wait
    // the next request, on another thread, could find both endpoints at one and rightly take either.)
    const idleEp = bal.registry.byId.get(idle.name)!;
    let sent = 0;
    await waitFor(async () => {
      for (let i = 0; i < 10; i++) {
        await waitFor(() => bal.activeOf(idleEp) === 0, 'the previous request to be released');
        const r = await send(c, `${bal.url}/x`, { headers: { connection: 'close' } });
        expect(r.body).toBe(`${idle.name}\n`);
        sent++;
      }
      const per = bal.requestsPerThread();
      return per.length === 2 && per.every((n) => n > 0);
    }, 'both threads to have served requests', 30_000);
    expect(busy.received.map((r) => r.url)).toEqual(['/hold']);

    held[0].end('done\n');
    expect((await slow).body).toBe('done\n');
    await waitFor(() => bal.activeOf(bal.registry.byId.get(busy.name)!) === 0, 'the held request to end');

    // The main thread's figures are every thread's.
    await waitFor(() => bal.registry.services.get(STATIC_SERVICE)!.requests === sent + 1, 'the threads\' reports');
    const text = await bal.metrics.registry.metrics();
    expect(text).toContain(`borealis_balancer_requests_total{service="static",endpoint="${idle.name}"} ${sent}`);
    expect(text).toContain(`borealis_balancer_requests_total{service="static",endpoint="${busy.name}"} 1`);

    const port = bal.address!.port;
    closed = true;
    await bal.close();
    // Every thread let go of the port: it can be bound exclusively again.
    await new Promise<void>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve()));
    });
  });
});
