/** `borealis drain` / `undrain` (through tsx, as real processes) against an in-process master on 127.0.0.1:0. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimulatedAgent } from '../../src/agent/index.js';
import { apiFixture, waitFor } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, BOREALIS_MASTER: '' }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function agent(addr: string, id: string): SimulatedAgent {
  const a = SimulatedAgent.start({ master: addr, agentId: id, resources: 'cpus=2,mem=2Gi,disk=10Gi', ports: '31000-31999' });
  fx.onCleanup(() => a.stop());
  return a;
}

describe('borealis undrain', () => {
  it('ends a drain with the exit codes and output of drain, and is idempotent', async () => {
    const { addr, master } = await fx.start();
    await agent(addr, 'sim-0').whenRegistered();

    const drained = await cli(['drain', 'sim-0', '--master', addr]);
    expect(drained).toMatchObject({ code: 0, stdout: 'draining sim-0 (0 tasks on it)\n' });
    const undrained = await cli(['undrain', 'sim-0', '--master', addr]);
    expect(undrained).toMatchObject({ code: 0, stdout: 'sim-0 is up, taking placements (0 tasks on it)\n' });
    expect(master.listAgents().map((a) => a.state)).toEqual(['up']);

    // Not draining: the same answer, exit 0.
    const again = await cli(['undrain', 'sim-0', '--master', addr, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ id: 'sim-0', state: 'up' });

    const unknown = await cli(['undrain', 'nope', '--master', addr]);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toContain('BRL_ERR_UNKNOWN_AGENT');
    expect((await cli(['undrain'])).code).toBe(2);
  });

  it('drain of a lost agent says it stays lost', async () => {
    const { addr, master } = await fx.start({ heartbeatTimeoutMs: 300 });
    const a = agent(addr, 'sim-0');
    await a.whenRegistered();
    await a.stop();
    await waitFor(() => master.listAgents()[0]?.state === 'lost', 'sim-0 lost');
    const r = await cli(['drain', 'sim-0', '--master', addr]);
    expect(r).toMatchObject({ code: 0, stdout: 'sim-0 is lost; drain recorded: it re-registers draining\n' });
    expect(master.listAgents()[0]?.state).toBe('lost');
    const u = await cli(['undrain', 'sim-0', '--master', addr]);
    expect(u).toMatchObject({ code: 0, stdout: 'sim-0 is lost; not draining: it re-registers up\n' });
  });
});
