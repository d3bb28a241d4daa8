/** `borealis balancer` as a real process: --static with weights, the start-up line, clean exit on SIGTERM, usage errors. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStaticEndpoints } from '../../src/balancer/index.js';
import { UWS, balancerFixture, send, waitFor } from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src/cli/main.ts');

describe('borealis balancer', () => {
  const fx = balancerFixture();

  it('parses a static endpoint list', () => {
    expect(parseStaticEndpoints('127.0.0.1:8001@1, 127.0.0.1:8002@2.5,[::1]:9000')).toEqual([
      { id: '127.0.0.1:8001', host: '127.0.0.1', port: 8001, weight: 1 },
      { id: '127.0.0.1:8002', host: '127.0.0.1', port: 8002, weight: 2.5 },
      { id: '[::1]:9000', host: '::1', port: 9000, weight: 1 },
    ]);
    expect(() => parseStaticEndpoints('127.0.0.1:8001@0')).toThrow(/host:port@weight/);
    expect(() => parseStaticEndpoints('nope')).toThrow(/host:port/);
  });

  /** Starts `borealis balancer --static a,b` with `args` and `env`; resolves with its URL, output and exit. */
  async function start(args: string[], env: Record<string, string>, line: RegExp) {
    const a = await fx.backend('a');
    const b = await fx.backend('b');
    // Port 0 through the environment variable: the flag is absent, so $BOREALIS_BALANCER_LISTEN decides.
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN, 'balancer', '--static', `${a.address}@1,${b.address}@1`, ...args], {
      cwd: ROOT,
      env: { ...process.env, BOREALIS_BALANCER_LISTEN: '127.0.0.1:0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    fx.onCleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const out = { stderr: '' };
    child.stderr!.on('data', (c: Buffer) => (out.stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const m = await waitFor(() => line.exec(out.stderr), 'the start-up line', 30_000);
    return { child, out, exited, url: `http://127.0.0.1:${m[1]}` };
  }

  it('balances a --static list, says which transport it runs on and why, and stops cleanly on SIGTERM', async () => {
    const { child, out, exited, url } = await start([], { BOREALIS_NATIVE: '0' }, /balancer listening on 127\.0\.0\.1:(\d+) \(node:http \(native-free\); BOREALIS_NATIVE=0\)/);
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await send(fx.client(), `${url}/x`)).body);
    expect(bodies.sort()).toEqual(['a GET /x\n', 'a GET /x\n', 'b GET /x\n', 'b GET /x\n']);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out.stderr).toContain('SIGTERM, finishing in-flight requests and stopping');
  });

  it.skipIf(UWS === null)('picks uWebSockets.js by itself, and runs --threads 2 on it', async () => {
    const one = await start([], { BOREALIS_NATIVE: '' }, /balancer listening on 127\.0\.0\.1:(\d+) \(uWebSockets\.js; its native binary loaded/);
    expect((await send(fx.client(), `${one.url}/y`)).status).toBe(200);
    one.child.kill('SIGTERM');
    expect(await one.exited).toBe(0);
    const two = await start(['--threads', '2'], { BOREALIS_NATIVE: '' }, /balancer listening on 127\.0\.0\.1:(\d+) \(uWebSockets\.js; 2 threads sharing the port\)/);
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await send(fx.client(), `${two.url}/z`)).body);
    // Each thread breaks ties by its own least-recently-picked order, and the kernel decides which thread takes a
    // connection: how the four split is not fixed, but a thread that serves two of them alternates.
    expect(new Set(bodies)).toEqual(new Set(['a GET /z\n', 'b GET /z\n']));
    two.child.kill('SIGTERM');
    expect(await two.exited).toBe(0);
  });

  it('refuses bad flags with exit code 2', async () => {
    const run = (args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', MAIN, 'balancer', ...args], { cwd: ROOT, timeout: 30_000, env: { ...process.env, ...env } }, (err, _out, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
    const [bad, both, listen, threads, nodeThreads] = await Promise.all([
      run(['--static', '127.0.0.1:1@-1']),
      run(['--static', '127.0.0.1:1', '--master', '127.0.0.1:5050']),
      run(['--static', '127.0.0.1:1', '--listen', 'nowhere']),
      run(['--static', '127.0.0.1:1', '--threads', '0']),
      run(['--static', '127.0.0.1:1', '--threads', '2'], { BOREALIS_NATIVE: '0' }),
    ]);
    expect(threads).toMatchObject({ code: 2 });
    expect(threads.stderr).toContain('--threads must be a whole number in 1..64, got 0');
    expect(nodeThreads).toMatchObject({ code: 2 });
    expect(nodeThreads.stderr).toContain('--threads 2 needs uWebSockets.js, which is not in use here (BOREALIS_NATIVE=0)');
    expect(bad).toMatchObject({ code: 2 });
    expect(bad.stderr).toContain('--static: static endpoint "127.0.0.1:1@-1" must be host:port or host:port@weight');
    expect(both).toMatchObject({ code: 2 });
    expect(both.stderr).toContain('--static and --master exclude each other');
    expect(listen).toMatchObject({ code: 2 });
    expect(listen.stderr).toContain('--listen "nowhere" must be host:port');
  });
});
