import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpHealthChecker } from '../../src/agent/health/health-checker.js';
import type { HealthCheckOptions, HealthStatus } from '../../src/agent/health/health-checker.js';
import { probeHttp } from '../../src/agent/health/http-probe.js';
import { TaskRunner } from '../../src/agent/executor/task-runner.js';
import type { TaskSpec } from '../../src/agent/executor/types.js';
import { RssPollIsolator } from '../../src/agent/isolation/rss-poll.js';
import { detectIsolator } from '../../src/agent/isolation/detect.js';
import type { Detection } from '../../src/agent/isolation/detect.js';
import { ErrorCodes, isBorealisError } from '../../src/api/errors.js';
import { Cleanup, freePort, makeTempDir, readIfExists, waitFor } from './helpers.js';

const cleanup = new Cleanup();
const checkers: HttpHealthChecker[] = [];
const servers: http.Server[] = [];
let detection: Detection;
let workDir: string;

beforeAll(async () => {
  detection = await detectIsolator({ agentId: `test-health-${process.pid}` });
  workDir = await makeTempDir('health');
});

afterEach(async () => {
  for (const c of checkers.splice(0)) await c.stop();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  await cleanup.run();
});

afterAll(async () => {
  await detection?.isolator.close();
  cleanup.dir(workDir);
  await cleanup.run();
});

/** Fast settings so a test runs in milliseconds; the logic under test is the same as with the defaults. */
function checker(opts: HealthCheckOptions): HttpHealthChecker {
  const c = new HttpHealthChecker({ intervalMs: 10, timeoutMs: 2_000, gracePeriodMs: 0, path: '/health', ...opts });
  checkers.push(c);
  return c;
}

function recordChanges(c: HttpHealthChecker): Array<[HealthStatus, HealthStatus]> {
  const changes: Array<[HealthStatus, HealthStatus]> = [];
  c.on('change', (status, previous) => changes.push([status, previous]));
  return changes;
}

/** An in-process server on an ephemeral 127.0.0.1 port; `open` tracks the sockets it currently holds. */
async function server(handler: http.RequestListener): Promise<{ port: number; open: Set<net.Socket>; requests: () => number }> {
  let requests = 0;
  const open = new Set<net.Socket>();
  const s = http.createServer((req, res) => {
    requests++;
    handler(req, res);
  });
  s.on('connection', (sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { port: (s.address() as net.AddressInfo).port, open, requests: () => requests };
}

/** A tiny node:http task that answers 200 to its first OK_REQUESTS requests and 500 after that. */
const FLAKY_SERVER = `
const http = require('node:http');
let n = 0;
const ok = Number(process.env.OK_REQUESTS);
http.createServer((req, res) => { n++; res.writeHead(n <= ok ? 200 : 500); res.end(String(n)); })
  .listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

function flakyServerSpec(taskId: string, port: number, okRequests: number): TaskSpec {
  return {
    taskId,
    job: 'web',
    command: { argv: [process.execPath, '-e', FLAKY_SERVER] },
    env: { OK_REQUESTS: String(okRequests) },
    ports: [port],
    limits: { memMiB: 256, cpusMilli: 250 },
  };
}

describe('HttpHealthChecker', () => {
  it('sees a task child go healthy, then unhealthy once it starts failing, and the agent kills it', async () => {
    const port = await freePort();
    const task = cleanup.runner(
      new TaskRunner(flakyServerSpec(`web-${process.pid}`, port, 3), {
        workDir,
        isolator: detection.isolator,
        killGracePeriodMs: 2_000,
      }),
    );
    await task.start();
    await waitFor(async () => (await readIfExists(`${task.sandbox}/stdout`)).includes('listening'), 'the server to listen');

    const c = checker({ port, consecutiveFailures: 2 });
    const changes = recordChanges(c);
    let checksAtUnhealthy = 0;
    c.on('change', (status) => {
      if (status !== 'unhealthy') return;
      checksAtUnhealthy = c.checks;
      void task.kill('unhealthy');
    });
    c.start();
    const result = await task.exited;
    expect(changes).toEqual([
      ['healthy', 'unknown'],
      ['unhealthy', 'healthy'],
    ]);
    expect(checksAtUnhealthy).toBe(5); // 3 passes, then 2 failures in a row
    expect(result).toMatchObject({ reason: 'unhealthy', signal: 'SIGTERM' });
  });

  it('is never healthy before a check passes, and recovers when checks pass again', async () => {
    let healthy = false;
    const srv = await server((_req, res) => {
      res.writeHead(healthy ? 302 : 503, { location: '/elsewhere' }); // 3xx counts as passing
      res.end();
    });
    const c = checker({ port: srv.port, consecutiveFailures: 3 });
    const changes = recordChanges(c);
    const statusesBeforeUnhealthy: HealthStatus[] = [];
    c.on('check', () => statusesBeforeUnhealthy.push(c.status));
    c.start();
    await waitFor(() => c.status === 'unhealthy', 'unhealthy');
    expect(statusesBeforeUnhealthy.slice(0, 2)).toEqual(['unknown', 'unknown']);
    expect(c.consecutiveFailures).toBe(3);
    healthy = true;
    await waitFor(() => c.status === 'healthy', 'recovery');
    expect(changes).toEqual([
      ['unhealthy', 'unknown'],
      ['healthy', 'unhealthy'],
    ]);
    expect(c.consecutiveFailures).toBe(0);
  });

  it('uses one short-lived socket per check and leaves none open after stop', async () => {
    const srv = await server((_req, res) => res.end('ok'));
    const c = checker({ port: srv.port });
    c.start();
    await waitFor(() => c.checks >= 5, 'five checks');
    await c.stop();
    const requestsAtStop = srv.requests();
    await waitFor(() => srv.open.size === 0, 'all check sockets to close');
    await sleep(100);
    expect(srv.requests()).toBe(requestsAtStop); // no check after stop
    expect(c.status).toBe('healthy');
  });

  it('aborts a check in flight on stop, closing its socket', async () => {
    const srv = await server(() => {
      // never answers
    });
    const c = checker({ port: srv.port, timeoutMs: 30_000 });
    c.start();
    await waitFor(() => srv.requests() === 1, 'the first check to arrive');
    await c.stop();
    await waitFor(() => srv.open.size === 0, 'the aborted socket to close');
    expect(c.checks).toBe(0); // an aborted check is not a verdict
    expect(c.status).toBe('unknown');
  });

  it('refuses bad options with stable codes', () => {
    const bads: HealthCheckOptions[] = [
      { port: 0 },
      { port: 80, path: 'health' },
      { port: 80, consecutiveFailures: 0 },
      { port: 80, intervalMs: -1 },
    ];
    for (const bad of bads) {
      try {
        new HttpHealthChecker(bad);
        expect.unreachable(`accepted ${JSON.stringify(bad)}`);
      } catch (err) {
        expect(isBorealisError(err) && err.code).toBe(ErrorCodes.INVALID_ARGUMENT);
      }
    }
    const c = checker({ port: 80, gracePeriodMs: 60_000 });
    c.start();
    expect(() => c.start()).toThrow(/already started/);
  });
});

describe('probeHttp', () => {
  it('fails on a timeout, a refused connection and a 5xx, and passes on 2xx', async () => {
    const hang = await server(() => undefined);
    expect(await probeHttp({ host: '127.0.0.1', port: hang.port, path: '/', timeoutMs: 50 })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/timed out/),
    });
    await waitFor(() => hang.open.size === 0, 'the timed-out socket to close');

    const closedPort = await freePort();
    expect(await probeHttp({ host: '127.0.0.1', port: closedPort, path: '/', timeoutMs: 1_000 })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/ECONNREFUSED/),
    });

    const srv = await server((req, res) => {
      res.writeHead(req.url === '/bad' ? 500 : 204);
      res.end();
    });
    const target = { host: '127.0.0.1', port: srv.port, timeoutMs: 1_000 };
    expect(await probeHttp({ ...target, path: '/bad' })).toEqual({ ok: false, status: 500, error: 'HTTP 500' });
    expect(await probeHttp({ ...target, path: '/' })).toEqual({ ok: true, status: 204 });
  });
});

// The rss-poll isolator works for long-running tasks too (not only for the OOM case).
describe('health with rss-poll isolation', () => {
  it('checks a task child isolated by rss-poll', async () => {
    const port = await freePort();
    const task = cleanup.runner(
      new TaskRunner(flakyServerSpec(`web-rss-${process.pid}`, port, 1000), {
        workDir,
        isolator: new RssPollIsolator({ intervalMs: 20 }),
      }),
    );
    await task.start();
    await waitFor(async () => (await readIfExists(`${task.sandbox}/stdout`)).includes('listening'), 'the server to listen');
    const c = checker({ port });
    c.start();
    await waitFor(() => c.status === 'healthy', 'healthy');
    await c.stop();
    expect(await task.kill()).toMatchObject({ reason: 'killed', signal: 'SIGTERM' });
  });
});
