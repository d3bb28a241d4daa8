/** `borealis balancer` as a real process: --static with weights, the start-up line, clean exit on SIGTERM, usage errors. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStaticEndpoints } from '../../src/balancer/index.js';
import { balancerFixture, send, waitFor } from './helpers.js';

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

  it('balances a --static list, says which transport it runs on, and stops cleanly on SIGTERM', async () => {
    const a = await fx.backend('a');
    const b = await fx.backend('b');
    // Port 0 through the environment variable: the flag is absent, so $BOREALIS_BALANCER_LISTEN decides.
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN, 'balancer', '--static', `${a.address}@1,${b.address}@1`], {
      cwd: ROOT,
      env: { ...process.env, BOREALIS_BALANCER_LISTEN: '127.0.0.1:0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    fx.onCleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const m = await waitFor(() => /balancer listening on 127\.0\.0\.1:(\d+) \(node:http \(native-free\)\)/.exec(stderr), 'the start-up line', 30_000);
    const url = `http://127.0.0.1:${m[1]}`;
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await send(fx.client(), `${url}/x`)).body);
    expect(bodies.sort()).toEqual(['a GET /x\n', 'a GET /x\n', 'b GET /x\n', 'b GET /x\n']);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('SIGTERM, finishing in-flight requests and stopping');
  });

  it('refuses bad flags with exit code 2', async () => {
    const run = (args: string[]): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', MAIN, 'balancer', ...args], { cwd: ROOT, timeout: 30_000 }, (err, _out, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
    const [bad, both, listen] = await Promise.all([
      run(['--static', '127.0.0.1:1@-1']),
      run(['--static', '127.0.0.1:1', '--master', '127.0.0.1:5050']),
      run(['--static', '127.0.0.1:1', '--listen', 'nowhere']),
    ]);
    expect(bad).toMatchObject({ code: 2 });
    expect(bad.stderr).toContain('--static: static endpoint "127.0.0.1:1@-1" must be host:port or host:port@weight');
    expect(both).toMatchObject({ code: 2 });
    expect(both.stderr).toContain('--static and --master exclude each other');
    expect(listen).toMatchObject({ code: 2 });
    expect(listen.stderr).toContain('--listen "nowhere" must be host:port');
  });
});
