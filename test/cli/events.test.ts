/** `borealis events` (through tsx, as a real process) against an in-process master on 127.0.0.1. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../src/api/index.js';
import type { ClusterEvent } from '../../src/master/types.js';
import { SimAgent } from '../../src/master/testing/sim-agent.js';
import { apiFixture, waitFor } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = [ '--import', 'tsx', join(ROOT, 'src/cli/main.ts') ];

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...process.env, BOREALIS_MASTER: '' }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A long-running `borealis events`, its stdout as lines. */
function tail(args: string[]): { child: ChildProcess; lines: string[]; stderr: () => string } {
  const child = spawn(process.execPath, [...CLI, 'events', ...args], { cwd: ROOT, env: { ...process.env, BOREALIS_MASTER: '' } });
  const lines: string[] = [];
  let buf = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  fx.onCleanup(() => void child.kill('SIGKILL'));
  return { child, lines, stderr: () => err };
}

const wire = (events: readonly ClusterEvent[]): ClusterEvent[] => JSON.parse(JSON.stringify(events)) as ClusterEvent[];

describe('borealis events', () => {
  it('prints the stream as JSON lines (--json) and as one human line per event', async () => {
    const { master, addr } = await fx.start();
    const agent = new SimAgent({ id: 'sim-1' });
    await agent.connect(master);
    fx.onCleanup(() => agent.stop());
    await master.submitJob({ name: 'web', type: 'service', instances: 2, command: 'sleep 1000', resources: { cpus: 0.1, mem: '16Mi' } });
    // Events follow the journal, so they can trail listTasks(): wait for the events themselves.
    await waitFor(
      () => (master.events.since(0) ?? []).filter((e) => e.type === 'task_state' && e.job === 'web' && e.state === 'running').length === 2,
      'running events',
    );
    const all = wire(master.events.since(0)!);
    expect(all.length).toBeGreaterThan(6);

    const json = await cli(['events', '--json', '--since', '0', '--limit', String(all.length), '--master', addr]);
    expect(json.code).toBe(0);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l) as ClusterEvent)).toEqual(all);

    const placed = await cli(['events', '--since', '0', '--type', 'task_placed', '--job', 'web', '--limit', '2', '--master', addr]);
    expect(placed.code).toBe(0);
    const lines = placed.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\s*\d+ \d\d:\d\d:\d\d\.\d{3} task_placed\s+web\.\d\.0 -> staging on sim-1 /);
  });

  it('reconnects after the server goes away and resumes with no gap and no duplicate', async () => {
    const { master } = await fx.start();
    let api: ApiServer = await startApiServer(master, { host: '127.0.0.1', port: 0 });
    const port = api.address.port;
    fx.onCleanup(() => api.close());
    const t = tail(['--json', '--master', `127.0.0.1:${port}`]);
    const publish = (n: number): void => {
      for (let i = 0; i < n; i++) master.events.publish({ type: 'error', data: { code: 'BRL_ERR_INTERNAL', i } });
    };
    await waitFor(() => api.events.subscribers === 1, 'the CLI to subscribe');
    publish(5);
    await waitFor(() => t.lines.length === 5, 'the first events');

    await api.close();
    publish(7); // while the CLI is disconnected
    api = await startApiServer(master, { host: '127.0.0.1', port });
    await waitFor(() => api.events.subscribers === 1, 'the CLI to reconnect', 20_000);
    publish(3);
    await waitFor(() => t.lines.length === 15, 'every event once');
    await new Promise((r) => setTimeout(r, 100));
    const printed = t.lines.map((l) => JSON.parse(l) as ClusterEvent);
    expect(printed.map((e) => e.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(printed).toEqual(wire(master.events.since(0)!));
    t.child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => t.child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
  });

  it('exits 2 for a bad flag, 3 when the master cannot be reached', async () => {
    expect((await cli(['events', '--type', 'bogus', '--master', '127.0.0.1:1'])).code).toBe(2);
    expect((await cli(['events', '--since', '-3', '--master', '127.0.0.1:1'])).code).toBe(2);
    const r = await cli(['events', '--master', '127.0.0.1:1']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cannot reach the master');
  });
});
