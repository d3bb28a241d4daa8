/** Failures are counted by kind, with their latencies kept out of the success histogram. */
import { describe, expect, it } from 'vitest';
import { runLoad } from '../../loadgen/index.js';
import { targets } from './servers.js';

const t = targets();
const total = (errors: Record<string, number>): number => Object.values(errors).reduce((a, b) => a + b, 0);

describe('loadgen errors', () => {
  it('counts 5xx and 4xx answers as errors by status, with their status codes and bytes', async () => {
    const target = await t.start((req, res) => {
      const status = req.url === '/missing' ? 404 : 503;
      res.writeHead(status, { 'content-type': 'text/plain' }).end('no\n');
    });
    const unavailable = await runLoad({ url: target.url, rate: 200, durationMs: 500, connections: 2 });
    expect(unavailable.requests).toBe(100);
    expect(unavailable.errors).toEqual({ connect_refused: 0, reset: 0, timeout: 0, status_4xx: 0, status_5xx: 100, other: 0 });
    expect(unavailable.statusCodes).toEqual({ '503': 100 });
    expect(unavailable.latencyMs.count).toBe(0);
    expect(unavailable.bytes).toBe(300);
    // Error answers are still answers: the achieved rate counts them.
    expect(unavailable.achievedRate).toBeGreaterThan(0);

    const missing = await runLoad({ url: `${target.url}missing`, durationMs: 200, connections: 2 });
    expect(missing.errors.status_4xx).toBe(missing.requests);
    expect(missing.statusCodes).toEqual({ '404': missing.requests });
  });

  it('counts connections the server resets', async () => {
    const target = await t.start((req) => req.socket.destroy());
    const report = await runLoad({ url: target.url, rate: 200, durationMs: 500, connections: 2 });
    expect(report.requests).toBe(100);
    expect(report.errors.reset).toBe(100);
    expect(report.latencyMs.count).toBe(0);
    expect(report.statusCodes).toEqual({});
  });

  it('counts refused connections on a closed port', async () => {
    const port = await t.closedPort();
    const report = await runLoad({ url: `http://127.0.0.1:${port}/`, rate: 200, durationMs: 500, connections: 2 });
    expect(report.requests).toBe(100);
    expect(report.errors.connect_refused).toBe(100);
    expect(report.latencyMs.count).toBe(0);
    expect(report.achievedRate).toBe(0);
  });

  it('counts requests that outlive the timeout — sent or still waiting to be sent at the end — as timeouts', async () => {
    // Never answers; the run must still end, about one timeout after its window.
    const target = await t.start(() => undefined);
    const report = await runLoad({ url: target.url, rate: 50, durationMs: 400, connections: 2, timeoutMs: 150 });
    expect(report.requests).toBe(20);
    expect(report.errors).toEqual({ connect_refused: 0, reset: 0, timeout: 20, status_4xx: 0, status_5xx: 0, other: 0 });
    expect(report.latencyMs.count).toBe(0);
    // Two connections held every slot, so most requests waited for one.
    expect(report.queued).toBeGreaterThan(0);
  });

  it('closed loop: counts failures and keeps going', async () => {
    const port = await t.closedPort();
    const report = await runLoad({ url: `http://127.0.0.1:${port}/`, durationMs: 200, connections: 2 });
    expect(report.requests).toBeGreaterThan(0);
    expect(report.errors.connect_refused).toBe(report.requests);
    expect(total(report.errors)).toBe(report.requests);
  });
});
