/**
 * `borealis up` counts agents that registered whatever their state: after a restart a drained agent comes back
 * draining, and `up` must neither wait its full ready timeout for it nor report it as missing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { registeredLines } from '../../src/cli/up.js';
import { apiFixture, waitFor } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');

describe('registeredLines', () => {
  it('counts every registered agent and names the draining and lost ones', () => {
    expect(registeredLines([{ id: 'a', state: 'up' }, { id: 'b', state: 'up' }], 2)).toEqual(['2 of 2 registered: a, b']);
    expect(registeredLines([{ id: 'a', state: 'draining' }, { id: 'b', state: 'up' }, { id: 'c', state: 'lost' }], 3)).toEqual([
      '3 of 3 registered (1 draining, 1 lost): a, b, c',
      'draining (no new tasks): a; `borealis undrain <agent>` puts one back to work',
      'lost: c',
    ]);
    expect(registeredLines([], 3)).toEqual(['0 of 3 registered: -']);
  });
});

interface Up {
  child: ChildProcess;
  out: () => string;
}

const running: Up[] = [];

/** Every process under `pid` (the agents `up` spawned), deepest first. */
function descendants(pid: number): number[] {
  let direct: number[] = [];
  try {
    direct = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    // no children: ps exits 1
  }
  return direct.flatMap((c) => [...descendants(c), c]);
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Ctrl-C, as a user would; if it does not end in time, kill it and what it started by pid. */
async function stop(up: Up): Promise<void> {
  const i = running.indexOf(up);
  if (i >= 0) running.splice(i, 1);
  const pid = up.child.pid!;
  const tree = descendants(pid);
  up.child.kill('SIGINT');
  if (await exited(up.child, 20_000)) return;
  for (const p of [...tree, pid]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

afterEach(async () => {
  for (const up of [...running]) await stop(up);
});

function startUp(dataDir: string): Up {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'up', '--data-dir', dataDir, '--agents', '1', '--no-demo', '--listen', '127.0.0.1:0', '--balancer-listen', '127.0.0.1:0'],
    { cwd: ROOT, env: { ...process.env, BOREALIS_MASTER: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const up = { child, out: () => out };
  running.push(up);
  return up;
}

/** Well under up's 60 s ready wait: a run that waits it out fails here. */
const READY_MS = 30_000;

describe('borealis up after a restart with a drained agent', () => {
  it('reports the agent registered and draining, without waiting out the ready timeout', async () => {
    const dataDir = await fx.tempDir();
    const first = startUp(dataDir);
    await waitFor(() => first.out().includes('Ctrl-C stops everything.'), 'the first up to be ready', READY_MS);
    expect(first.out()).toContain('1 of 1 registered: ');
    const addr = /borealis master on http:\/\/(\S+)/.exec(first.out())![1];
    const { agents } = (await (await fetch(`http://${addr}/v1/agents`)).json()) as { agents: { id: string }[] };
    const id = agents[0]!.id;
    expect((await fetch(`http://${addr}/v1/agents/${encodeURIComponent(id)}/drain`, { method: 'POST' })).status).toBe(200);
    await stop(first);
    expect(first.child.exitCode).toBe(0);

    const second = startUp(dataDir);
    await waitFor(() => second.out().includes('Ctrl-C stops everything.'), 'the second up to be ready', READY_MS);
    expect(second.out()).toContain(`1 of 1 registered (1 draining): ${id}`);
    expect(second.out()).toContain(`draining (no new tasks): ${id}`);
    await stop(second);
    expect(second.child.exitCode).toBe(0);
  }, 90_000);
});
