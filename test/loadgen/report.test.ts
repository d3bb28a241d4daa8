/** The report's shape, and that every scheduled request is accounted for. */
import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, formatReport, runLoad } from '../../loadgen/index.js';
import { ok, targets } from './servers.js';

const t = targets();

describe('loadgen report', () => {
  it('open loop: reports every documented key, and accounts for rate × duration requests', async () => {
    const target = await t.start(ok);
    const report = await runLoad({ url: target.url, rate: 400, durationMs: 1000, warmupMs: 200, connections: 4 });

    expect(Object.keys(report).sort()).toEqual(
      [
        'url', 'mode', 'rate', 'connections', 'pipelining', 'maxInFlight', 'warmupMs', 'durationMs', 'requests', 'achievedRate',
        'latencyMs', 'errors', 'statusCodes', 'bytes', 'maxLagMs', 'queued',
      ].sort(),
    );
    expect(report).toMatchObject({ url: target.url, mode: 'open', rate: 400, connections: 4, pipelining: 1, maxInFlight: 4, warmupMs: 200, durationMs: 1000 });
    expect(Object.keys(report.latencyMs).sort()).toEqual(['count', 'max', 'mean', 'p50', 'p90', 'p99', 'p999'].sort());
    expect(Object.keys(report.errors)).toEqual([...ERROR_KINDS]);

    // Each of the 400 requests scheduled in the window settles one way or another (the 80 warmup ones are not counted).
    expect(report.requests).toBe(400);
    const errors = Object.values(report.errors).reduce((a, b) => a + b, 0);
    expect(report.latencyMs.count + errors).toBe(report.requests);
    expect(report.latencyMs.count).toBeGreaterThanOrEqual(200);
    expect(report.statusCodes['200']).toBe(report.latencyMs.count);
    expect(report.bytes).toBe(report.latencyMs.count * 'hello\n'.length);
    // Warmup requests went out too, but only the window's are in the report.
    expect(target.count).toBeGreaterThanOrEqual(report.requests);
    expect(report.achievedRate).toBeGreaterThan(0);
    expect(report.achievedRate).toBeLessThanOrEqual(400 * 1.1);

    const l = report.latencyMs;
    expect(l.p50).toBeGreaterThan(0);
    expect(l.p50).toBeLessThanOrEqual(l.p90);
    expect(l.p90).toBeLessThanOrEqual(l.p99);
    expect(l.p99).toBeLessThanOrEqual(l.p999);
    expect(l.p999).toBeLessThanOrEqual(l.max * 1.001);
    expect(l.mean).toBeLessThanOrEqual(l.max);

    const table = formatReport(report);
    expect(table).toContain('open loop at 400 req/s');
    expect(table).toMatch(/latency ms\s+p50\s+p90\s+p99\s+p99\.9\s+max\s+mean/);
    expect(table).toContain('200: ');
  });

  it('closed loop: keeps connections × pipelining outstanding and measures from the actual send', async () => {
    const target = await t.start(ok);
    const report = await runLoad({ url: target.url, durationMs: 400, connections: 3 });
    expect(report).toMatchObject({ mode: 'closed', rate: null, connections: 3, maxInFlight: 3, queued: 0, maxLagMs: 0, durationMs: 400 });
    expect(report.requests).toBeGreaterThan(0);
    expect(report.latencyMs.count).toBe(report.requests);
    expect(report.errors.other).toBe(0);
    // Every connection was used, none more.
    expect(target.sockets).toBe(3);
  });

  it('an already-aborted signal sends nothing and reports an empty window', async () => {
    const target = await t.start(ok);
    const report = await runLoad({ url: target.url, rate: 1000, durationMs: 5000, signal: AbortSignal.abort() });
    expect(report).toMatchObject({ requests: 0, durationMs: 0, achievedRate: 0, latencyMs: { count: 0, p50: 0, max: 0 } });
    expect(target.count).toBe(0);
  });

  it('stopping early ends the window then, and still drains and reports what was sent', async () => {
    const target = await t.start(ok);
    const ac = new AbortController();
    const run = runLoad({ url: target.url, rate: 500, durationMs: 30_000, connections: 2, signal: ac.signal });
    while (target.count < 50) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    const report = await run;
    expect(report.durationMs).toBeLessThan(30_000);
    expect(report.requests).toBeGreaterThanOrEqual(50);
    expect(report.requests).toBe(target.count);
  });
});
