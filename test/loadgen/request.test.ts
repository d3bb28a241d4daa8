/** What goes on the wire: method, path, headers and body as given, spread over the connections asked for. */
import { describe, expect, it } from 'vitest';
import { runLoad } from '../../loadgen/index.js';
import { ok, targets } from './servers.js';

const t = targets();

interface Seen {
  method: string;
  url: string;
  headers: string[];
  body: string;
}

describe('loadgen requests', () => {
  it('sends the method, path, query, headers (repeats kept, in order) and body given', async () => {
    const seen: Seen[] = [];
    const target = await t.start((req, res, body) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.rawHeaders, body: body.toString() });
      ok(req, res, body);
    });
    const report = await runLoad({
      url: `${target.url}items/7?x=1&y=two`,
      method: 'put',
      headers: [
        ['x-trace', 'abc'],
        ['x-multi', 'one'],
        ['x-multi', 'two'],
        ['content-type', 'application/json'],
      ],
      body: '{"n":1}',
      durationMs: 200,
      connections: 2,
    });
    expect(report.latencyMs.count).toBeGreaterThan(0);
    expect(seen.length).toBeGreaterThanOrEqual(report.requests);
    for (const s of seen) {
      expect(s).toMatchObject({ method: 'PUT', url: '/items/7?x=1&y=two', body: '{"n":1}' });
      const pairs: [string, string][] = [];
      for (let i = 0; i < s.headers.length; i += 2) pairs.push([s.headers[i]!.toLowerCase(), s.headers[i + 1]!]);
      expect(pairs.filter(([k]) => k.startsWith('x-'))).toEqual([
        ['x-trace', 'abc'],
        ['x-multi', 'one'],
        ['x-multi', 'two'],
      ]);
      expect(pairs).toContainEqual(['content-type', 'application/json']);
      expect(pairs).toContainEqual(['content-length', '7']);
      expect(pairs).toContainEqual(['host', `127.0.0.1:${target.port}`]);
    }
  });

  it('defaults to GET without a body and POST with one', async () => {
    const methods = new Set<string>();
    const target = await t.start((req, res, body) => {
      methods.add(`${req.method} ${body.length}`);
      ok(req, res, body);
    });
    await runLoad({ url: target.url, durationMs: 100, connections: 1 });
    await runLoad({ url: target.url, durationMs: 100, connections: 1, body: Buffer.from('abc') });
    expect([...methods].sort()).toEqual(['GET 0', 'POST 3']);
  });

  it('open loop spreads even a slow schedule over every connection', async () => {
    const target = await t.start(ok);
    const report = await runLoad({ url: target.url, rate: 100, durationMs: 300, connections: 3 });
    expect(report.latencyMs.count).toBe(30);
    expect(target.sockets).toBe(3);
  });

  it('pipelines up to the given depth on each connection', async () => {
    let outstanding = 0;
    let deepest = 0;
    const target = await t.start((req, res, body) => {
      deepest = Math.max(deepest, ++outstanding);
      setTimeout(() => {
        outstanding--;
        ok(req, res, body);
      }, 20);
    });
    const report = await runLoad({ url: target.url, durationMs: 300, connections: 1, pipelining: 4 });
    expect(report).toMatchObject({ pipelining: 4, maxInFlight: 4 });
    expect(report.latencyMs.count).toBeGreaterThan(0);
    expect(target.sockets).toBe(1);
    expect(deepest).toBe(4);
  });
});
