/** The `borealis-loadgen` command: usage errors exit 2 before sending; the bin prints one JSON report; SIGINT still reports. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runLoadgenCli } from '../../loadgen/cli.js';
import type { LoadReport } from '../../loadgen/index.js';
import { ok, targets } from './servers.js';

const t = targets();
const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'borealis-loadgen.js');
const BUILT = join(ROOT, 'dist', 'loadgen', 'main.js');

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runLoadgenCli(['node', 'borealis-loadgen', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err };
}

function run(command: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, command, { cwd: ROOT, timeout: timeoutMs }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
    children.push(child);
  });
}

function requireBuilt(): void {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first (CI builds before testing)`);
}

describe('borealis-loadgen CLI', () => {
  it('exits 1 when no request got a response, still printing the report; 0 when answers came, even errors', async () => {
    const port = await t.closedPort();
    const dead = await cli(['--url', `http://127.0.0.1:${port}/`, '--rate', '100', '--duration', '300ms', '--json']);
    expect(dead.code).toBe(1);
    expect((JSON.parse(dead.out[0]!) as LoadReport).errors.connect_refused).toBeGreaterThan(0);
    expect(dead.err.join('\n')).toMatch(/no request got a response \(connect_refused \d+\)/);
    const failing = await t.start((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const answered = await cli(['--url', failing.url, '--rate', '100', '--duration', '300ms', '--json']);
    expect(answered.code).toBe(0);
    expect((JSON.parse(answered.out[0]!) as LoadReport).statusCodes['503']).toBeGreaterThan(0);
  });

  it('exits 2 with a message naming the flag for every bad flag or value, sending nothing', async () => {
    const target = await t.start(ok);
    const url = target.url;
    const cases: [string[], RegExp][] = [
      [['--url', url, '--rate', 'abc'], /--rate: not a number/],
      [['--url', url, '--rate', '-5'], /--rate: must be > 0/],
      [['--url', url, '--duration', '10x'], /--duration: not a duration/],
      [['--url', url, '--connections', '0'], /--connections: must be ≥ 1/],
      [['--url', url, '--mode', 'closed', '--rate', '5'], /--rate: a rate applies to the open loop only/],
      [['--url', url, '--mode', 'open'], /--rate: the open loop needs a rate/],
      [['--url', url, '--header', 'nocolon'], /--header: expected name:value/],
      [['--url', url, '--body', 'x', '--body-file', '/nonexistent'], /--body and --body-file/],
      [['--url', url, '--body-file', '/nonexistent/body'], /--body-file: cannot read/],
      [['--url', 'http://10.0.0.1/', '--rate', '10'], /--url: 10\.0\.0\.1 is not a loopback address/],
      [['--url', 'ftp://127.0.0.1/'], /--url: only http:\/\//],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.join('\n'), args.join(' ')).toMatch(message);
      expect(r.out).toEqual([]);
    }
    // commander's own refusals (unknown flag, missing --url, bad choice) exit 2 too.
    for (const [args, message] of [
      [['--url', url, '--bogus'], /unknown option '--bogus'/],
      [['--rate', '5'], /required option '--url <url>' not specified/],
      [['--url', url, '--mode', 'sideways'], /Allowed choices are open, closed/],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code).toBe(2);
      expect(r.err.join('\n')).toMatch(message);
    }
    expect(target.count).toBe(0);
  });

  it('turns flags into the request: method, repeated headers, body from a file', async () => {
    const seen: string[] = [];
    const target = await t.start((req, res, body) => {
      seen.push(`${req.method} ${req.headers['x-a']} ${req.headers['x-b']} ${body.toString()}`);
      ok(req, res, body);
    });
    const dir = await mkdtemp(join(tmpdir(), 'borealis-loadgen-'));
    dirs.push(dir);
    const file = join(dir, 'body.txt');
    await writeFile(file, 'from a file');
    const r = await cli([
      '--url', target.url, '--rate', '50', '--duration', '200ms', '--connections', '2', '--method', 'PATCH',
      '--header', 'x-a: 1', '--header', 'x-b:two:parts', '--body-file', file, '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(1);
    const report = JSON.parse(r.out[0]!) as LoadReport;
    expect(report).toMatchObject({ mode: 'open', rate: 50, durationMs: 200, requests: 10 });
    expect(new Set(seen)).toEqual(new Set(['PATCH 1 two:parts from a file']));
  });

  it('prints a table without --json', async () => {
    const target = await t.start(ok);
    const r = await cli(['--url', target.url, '--duration', '100ms', '--connections', '1']);
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).toMatch(/closed loop, 1 connection[\s\S]*latency ms\s+p50/);
  });

  it('exits 2 as a real process on a bad flag', async () => {
    const r = await run(['--import', 'tsx', join(ROOT, 'loadgen', 'main.ts'), '--url', 'http://127.0.0.1:9/', '--rate', 'fast']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--rate: not a number');
    expect(r.stdout).toBe('');
  });

  it('the bin runs the built command and prints exactly one JSON object', async () => {
    requireBuilt();
    const target = await t.start(ok);
    const r = await run([BIN, '--url', target.url, '--rate', '200', '--duration', '500ms', '--warmup', '100ms', '--connections', '2', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as LoadReport;
    expect(report).toMatchObject({ url: target.url, mode: 'open', rate: 200, connections: 2, durationMs: 500, requests: 100 });
    expect(report.latencyMs.count).toBeGreaterThan(0);
  });

  it('SIGINT ends the run early, and the report is still printed', async () => {
    requireBuilt();
    const target = await t.start(ok);
    const child = spawn(process.execPath, [BIN, '--url', target.url, '--rate', '200', '--duration', '60s', '--connections', '2', '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    while (target.count < 40) {
      if (child.exitCode !== null) throw new Error(`exited early: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const report = JSON.parse(stdout) as LoadReport;
    expect(report.durationMs).toBeLessThan(60_000);
    expect(report.requests).toBeGreaterThanOrEqual(40);
    expect(report.requests).toBe(target.count);
    expect(stderr).toContain('interrupted');
  });
});
