/**
 * HEAD answers wherever GET does, with GET's status and headers and no body, on both API transports
 * (uWebSockets.js when it loads here, and node:http). Real master, real HTTP on 127.0.0.1:0.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../src/api/index.js';
import { Master } from '../../src/master/index.js';
import { loadNative } from '../../src/transport/index.js';
import { silent } from './helpers.js';
import { exchange } from '../transport/exchange.js';

const transports = loadNative().uws === null ? (['node'] as const) : (['node', 'uws'] as const);
const open: { master: Master; api: ApiServer; dir: string }[] = [];

afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.api.close();
    await o.master.close();
    await rm(o.dir, { recursive: true, force: true });
  }
});

async function start(transport: 'node' | 'uws'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'borealis-head-'));
  const master = await Master.open({ dataDir: dir, fsync: false, logger: silent, allocator: { workers: 1 } });
  const api = await startApiServer(master, { host: '127.0.0.1', port: 0 }, { transport });
  open.push({ master, api, dir });
  return api.url;
}

/** The headers a client can compare between GET and HEAD (not the Date, which ticks). */
function comparable(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  h.forEach((v, k) => {
    if (k !== 'date' && k !== 'keep-alive' && k !== 'connection') out[k] = v;
  });
  return out;
}

describe.each(transports)('HEAD on the %s API server', (transport) => {
  it('answers as GET does, without the body, wherever GET is routed', async () => {
    const base = await start(transport);
    for (const path of ['/v1/jobs', '/v1/agents', '/v1/tasks', '/v1/cluster', '/health', '/v1/jobs/nope', '/v1/tasks?job=nope']) {
      const get = await fetch(`${base}${path}`);
      const getBody = await get.text();
      const head = await fetch(`${base}${path}`, { method: 'HEAD' });
      expect([head.status, await head.text()], path).toEqual([get.status, '']);
      expect(comparable(head.headers), path).toEqual(comparable(get.headers));
      expect(Number(head.headers.get('content-length')), path).toBe(Buffer.byteLength(getBody));
    }
    const metrics = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect([metrics.status, metrics.headers.get('content-type'), await metrics.text()]).toEqual([200, expect.stringContaining('text/plain'), '']);
    // The connection HEAD used stays in step for the next request.
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('sends no body bytes: a request pipelined behind HEAD gets its answer right after the HEAD answer\'s head', async () => {
    const base = await start(transport);
    const port = Number(new URL(base).port);
    // fetch hides a body sent in answer to HEAD; on the wire, one would sit between the two heads.
    for (const path of ['/v1/jobs', '/v1/jobs/nope', '/v1/agents/a/drain']) {
      const req = `HEAD ${path} HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`;
      const r = await exchange(port, req, 5_000);
      const first = r.text.indexOf('\r\n\r\n');
      expect(first, path).toBeGreaterThan(0);
      expect(r.text.slice(first + 4, first + 4 + 9), path).toBe('HTTP/1.1 ');
      expect(r.text.slice(first + 4), path).toMatch(/^HTTP\/1\.1 200/);
    }
  });

  it('still refuses HEAD where there is no GET: 405 on a POST-only route, 404 on no route', async () => {
    const base = await start(transport);
    const post = await fetch(`${base}/v1/agents/a/drain`, { method: 'HEAD' });
    expect([post.status, post.headers.get('allow'), await post.text()]).toEqual([405, 'POST', '']);
    const none = await fetch(`${base}/v1/nothing`, { method: 'HEAD' });
    expect([none.status, await none.text()]).toEqual([404, '']);
  });
});
