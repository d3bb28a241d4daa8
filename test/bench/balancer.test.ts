/**
 * The balancer benchmark harness: its parsers and config writers, one tiny real run against every
 * target this machine has (haproxy, nginx and wrk are used when installed and skipped cleanly when
 * not), and Ctrl-C in the middle of a run. Every run must leave no process and no listening port.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { haproxyConfig, writeHaproxy } from '../../bench/balancer/haproxy.js';
import { parseLoadgenOutput } from '../../bench/balancer/loadgen.js';
import { isListening } from '../../bench/balancer/net.js';
import { backendConfig, proxyConfig, writeNginx } from '../../bench/balancer/nginx.js';
import { groupAlive } from '../../bench/balancer/processes.js';
import { REPO_ROOT, findProgram } from '../../bench/balancer/programs.js';
import { parseWrkOutput } from '../../bench/balancer/wrk.js';
import type { LatencyRow, QualityRow, ScalingRow, SkipRow, ThroughputRow } from '../../bench/balancer/rows.js';
import { type Row, TARGETS, runBalancer } from '../../bench/scenarios/balancer.js';

const dir = mkdtempSync(join(tmpdir(), 'borealis-balancer-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HAPROXY = findProgram('haproxy');
const NGINX = findProgram('nginx');

function run(file: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('parsers', () => {
  it('reads wrk results from the done-hook line, not from the rounded human summary', () => {
    const out = [
      'Running 1s test @ http://127.0.0.1:1/',
      '  1 threads and 64 connections',
      '  Thread Stats   Avg      Stdev     Max   +/- Stdev',
      '    Latency     1.18ms  478.31us   5.77ms   85.60%',
      'Requests/sec:  54585.10',
      'BRL_WRK {"requests":54600,"durationUs":1000300,"errors":{"connect":1,"read":2,"write":0,"status":3,"timeout":4},"latencyUs":{"p50":1100,"p99":3210,"p999":5176,"max":5981}}',
    ].join('\n');
    expect(parseWrkOutput(out)).toEqual({
      requests: 54600,
      rps: 54584,
      errors: 10,
      errorKinds: { connect: 1, read: 2, status: 3, timeout: 4 },
      latencyMs: { p50: 1.1, p99: 3.21, p999: 5.176, max: 5.981 },
    });
    expect(() => parseWrkOutput('Requests/sec:  54585.10\n')).toThrow(/no result line/);
  });

  it('reads loadgen --json: achieved rate, percentiles, every error kind, queueing', () => {
    const report = {
      mode: 'open',
      rate: 1000,
      requests: 2000,
      achievedRate: 999.6,
      latencyMs: { p50: 0.5, p90: 0.8, p99: 1.25, p999: 3, max: 4.5, mean: 0.6, count: 1990 },
      errors: { connect_refused: 2, reset: 1, timeout: 0, status_4xx: 0, status_5xx: 7, other: 0 },
      maxLagMs: 1.5,
      queued: 12,
    };
    expect(parseLoadgenOutput(`some log line\n${JSON.stringify(report)}\n`)).toEqual({
      requests: 2000,
      rps: 1000,
      errors: 10,
      errorKinds: { connect_refused: 2, reset: 1, status_5xx: 7 },
      latencyMs: { p50: 0.5, p99: 1.25, p999: 3, max: 4.5 },
      queued: 12,
      lagMs: 1.5,
    });
    expect(() => parseLoadgenOutput('no json here')).toThrow(/no JSON/);
  });
});

describe('configs the harness writes', () => {
  const upstreams = [
    { port: 18001, weight: 1 },
    { port: 18002, weight: 2 },
  ];

  it.skipIf(HAPROXY === null)('haproxy accepts its config (leastconn, http-reuse always, one thread)', async () => {
    const args = writeHaproxy(dir, 'haproxy-check', haproxyConfig(18000, upstreams));
    const cfg = haproxyConfig(18000, upstreams);
    expect(cfg).toMatch(/balance leastconn/);
    expect(cfg).toMatch(/http-reuse always/);
    expect(cfg).toMatch(/nbthread 1/);
    expect(cfg).toMatch(/server b2 127\.0\.0\.1:18002 weight 2/);
    const r = await run(HAPROXY!, ['-c', ...args.filter((a) => a !== '-db')]);
    expect(r.out).toMatch(/valid/i);
    expect(r.code).toBe(0);
  });

  it.skipIf(NGINX === null)('nginx accepts its backend and proxy configs, with every path in the temp dir', async () => {
    for (const [name, conf] of [
      ['nginx-backend-check', (d: string) => backendConfig(d, 18001)],
      ['nginx-proxy-check', (d: string) => proxyConfig(d, 18000, upstreams)],
    ] as const) {
      const args = writeNginx(dir, name, conf);
      const r = await run(NGINX!, ['-t', ...args]);
      expect(r.out).toMatch(/test is successful/);
      expect(r.code).toBe(0);
    }
    const proxy = proxyConfig(join(dir, 'p'), 18000, upstreams);
    expect(proxy).toMatch(/least_conn;/);
    expect(proxy).toMatch(/keepalive 64;/);
    expect(proxy).toMatch(/worker_processes 1;/);
    expect(proxy).toMatch(/server 127\.0\.0\.1:18002 weight=2;/);
  });
});

const latency = (v: unknown): void => {
  expect(v).toEqual({ p50: expect.any(Number), p99: expect.any(Number), p999: expect.any(Number), max: expect.any(Number) });
};

describe('a tiny run', () => {
  it('measures every target this machine has, prints one JSON object per row, and leaves nothing running', async () => {
    const lines: string[] = [];
    const report = await runBalancer({
      connections: 8,
      runs: 1,
      durationSec: 0.3,
      warmupSec: 0,
      latencyDurationSec: 0.3,
      latencyWarmupSec: 0,
      // Low enough that every target keeps up on a busy machine, so no run waits on a backlog to drain.
      rate: 200,
      qualityDurationSec: 0.3,
      targets: TARGETS,
      phases: ['throughput', 'latency'],
      closedLoop: 'auto',
      emit: (row) => lines.push(JSON.stringify(row)),
      log: () => {},
      handleSignals: false,
    });
    const rows = lines.map((l) => JSON.parse(l) as Row);
    expect(rows).toEqual(report.rows);
    for (const r of rows) expect(r.scenario).toBe('balancer');

    const setup = rows[0]!;
    expect(setup.phase).toBe('setup');
    if (setup.phase !== 'setup') return;
    expect(setup.backends).toBe(NGINX === null ? 'node' : 'nginx');
    expect(setup.tools.closedLoop).toBe(findProgram('wrk') === null ? 'loadgen' : 'wrk');

    // No target that can run here failed; every other one says why it was skipped.
    expect(rows.filter((r) => 'error' in r)).toEqual([]);
    const throughput = rows.filter((r): r is ThroughputRow => r.phase === 'throughput' && 'rps' in r);
    const skipped = rows.filter((r): r is SkipRow => r.phase === 'throughput' && 'skipped' in r).map((r) => r.target);
    expect([...throughput.map((r) => r.target), ...skipped].sort()).toEqual([...TARGETS].sort());
    expect(skipped.includes('haproxy')).toBe(HAPROXY === null);
    expect(skipped.includes('nginx')).toBe(NGINX === null);
    expect(skipped.filter((t) => !['haproxy', 'nginx', 'borealis', 'borealis-native-free'].includes(t))).toEqual([]);
    for (const r of throughput) {
      expect(r).toMatchObject({ transport: expect.any(String), connections: 8, runs: 1, errors: 0 });
      expect(r.rps).toBeGreaterThan(0);
      expect(r.rpsRuns).toEqual([r.rps]);
      latency(r.latencyMs);
      expect(r.ratioToDirect).toEqual(expect.any(Number));
      if (HAPROXY !== null) expect(r.ratioToHaproxy).toEqual(expect.any(Number));
      else expect(r.ratioToHaproxy).toBeNull();
    }

    // The open loop ran every measured target at the one fixed rate.
    const lat = rows.filter((r): r is LatencyRow => r.phase === 'latency' && 'rate' in r);
    expect(lat.map((r) => r.target)).toEqual(throughput.map((r) => r.target));
    for (const r of lat) {
      expect(r.rate).toBe(200);
      expect(r.loadOfSaturation).toEqual(expect.any(Number));
      expect(r.rps).toBeGreaterThan(0);
      latency(r.latencyMs);
    }

    // Nothing it started is left, and nothing listens where it did.
    expect(report.started.length).toBeGreaterThan(0);
    expect(report.survivors).toEqual([]);
    expect(report.listening).toEqual([]);
    for (const p of report.started) expect(groupAlive(p.pid)).toBe(false);
    for (const port of report.ports) expect(await isListening(port)).toBe(false);
  }, 120_000);
});

/**
 * A stand-in for `borealis balancer` with `--threads`, so the scaling runs' wiring is exercised
 * whatever the real CLI offers today, and the quality runs start in a blink: a round-robin
 * node:http proxy that logs its transport.
 */
const STAND_IN = `import http from 'node:http';
const args = process.argv.slice(2);
if (args.includes('--help')) { console.log('--static <endpoints>\\n--listen <host:port>\\n--threads <n>'); process.exit(0); }
const flag = (f) => args[args.indexOf(f) + 1];
const ups = flag('--static').split(',').map((s) => { const [h, p] = s.split('@')[0].split(':'); return { host: h, port: Number(p) }; });
const [host, port] = flag('--listen').split(':');
const agent = new http.Agent({ keepAlive: true });
let next = 0;
http.createServer((req, res) => {
  const u = ups[next++ % ups.length];
  const up = http.request({ host: u.host, port: u.port, path: req.url, method: req.method, headers: req.headers, agent }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(up);
}).listen(Number(port), host, () => console.error('stand-in listening (node:http) threads=' + flag('--threads')));
`;

describe('scaling and quality runs, against a stand-in balancer', () => {
  it('start it with --threads N for each N, and count where requests went in both quality cases', async () => {
    const standIn = join(dir, 'stand-in-borealis.mjs');
    writeFileSync(standIn, STAND_IN);
    const report = await runBalancer({
      connections: 8,
      runs: 1,
      durationSec: 0.3,
      warmupSec: 0,
      latencyDurationSec: 0.3,
      latencyWarmupSec: 0,
      qualityDurationSec: 0.3,
      targets: ['borealis'],
      phases: ['scaling', 'quality'],
      qualityTargets: ['borealis'],
      threads: [1, 2],
      borealisCli: [standIn],
      closedLoop: 'auto',
      emit: () => {},
      log: () => {},
      handleSignals: false,
    });
    const rows = report.rows.filter((r): r is ScalingRow => r.phase === 'scaling' && 'threads' in r);
    expect(report.rows.filter((r) => 'error' in r || 'skipped' in r)).toEqual([]);
    expect(rows.map((r) => [r.threads, r.transport])).toEqual([
      [1, 'node:http'],
      [2, 'node:http'],
    ]);
    expect(rows[0]!.ratioToOneThread).toBe(1);
    expect(rows[1]!.ratioToOneThread).toEqual(expect.any(Number));
    for (const r of rows) expect(r.rps).toBeGreaterThan(0);
    expect(report.started.filter((p) => p.name.startsWith('borealis-threads-')).map((p) => p.name)).toEqual(['borealis-threads-1', 'borealis-threads-2']);

    // Round-robin: every backend gets its quarter, so the slow-backend goal is (rightly) missed.
    const quality = report.rows.filter((r): r is QualityRow => r.phase === 'quality' && 'case' in r);
    expect(quality.map((r) => [r.case, r.target, r.weights, r.delaysMs])).toEqual([
      ['slow-backend', 'borealis', [1, 1, 1, 1], [0, 0, 0, 20]],
      ['weights', 'borealis', [1, 2, 3, 4], [0, 0, 0, 0]],
    ]);
    for (const r of quality) {
      expect(r.requests.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect(r.sharesPct.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
      for (const share of r.sharesPct) expect(share).toBeCloseTo(25, -1);
    }
    expect(quality[0]!.met).toBe(false);
    expect(quality[0]!.value).toBe(quality[0]!.sharesPct[3]);
    expect(quality[1]!.met).toBe(false);

    expect(report.survivors).toEqual([]);
    expect(report.listening).toEqual([]);
    for (const p of report.started) expect(groupAlive(p.pid)).toBe(false);
  }, 120_000);
});

describe('Ctrl-C', () => {
  it('stops every process the benchmark started and exits 130', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO_ROOT, 'bench/scheduling.ts'), '--scenario', 'balancer', '--quick', '--targets', 'direct,http-proxy', '--json'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    const pids: number[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (c: string) => {
        err += c;
        for (const m of c.matchAll(/started \S+ \(pid (\d+)/g)) pids.push(Number(m[1]));
        // Interrupt once the proxy under test is up: backends, proxy and load generator all run then.
        if (/started http-proxy \(pid/.test(err)) resolve();
      });
      void exited.then(() => reject(new Error(`the benchmark exited before starting http-proxy: ${err}`)));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toMatch(/SIGINT: stopping every process/);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    for (const pid of pids) expect(groupAlive(pid)).toBe(false);
  }, 120_000);
});
