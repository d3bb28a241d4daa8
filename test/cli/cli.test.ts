/** The `borealis` command (through tsx, as a real process) against an in-process master on 127.0.0.1:0. */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiFixture } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, BOREALIS_MASTER: '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('borealis CLI', () => {
  it('submits, lists and scales jobs, with the exit codes scripts rely on', async () => {
    const { addr } = await fx.start();
    const dir = await fx.tempDir();
    const file = join(dir, 'web.yaml');
    await writeFile(file, ['name: web', 'type: service', 'instances: 2', 'command: sleep 1000', 'resources:', '  cpus: 0.5', '  mem: 64Mi', ''].join('\n'));

    const empty = await cli(['jobs', '--json', '--master', addr]);
    expect(empty.code).toBe(0);
    expect(JSON.parse(empty.stdout)).toEqual([]);

    const run = await cli(['run', file, '--master', addr]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toContain('submitted service job web (2 instances)');

    // $BOREALIS_MASTER stands in for --master.
    const jobs = await cli(['jobs', '--json'], { BOREALIS_MASTER: addr });
    expect(jobs.code).toBe(0);
    expect(JSON.parse(jobs.stdout)).toMatchObject([{ name: 'web', state: 'running', spec: { instances: 2 } }]);
    const table = await cli(['jobs', '--master', addr]);
    expect(table.stdout).toMatch(/^NAME\s+TYPE\s+STATE\s+INSTANCES\s+TASKS\nweb\s+service\s+running\s+2\s+/);

    const scaled = await cli(['scale', 'web', '5', '--master', addr, '--json']);
    expect(scaled.code).toBe(0);
    expect(JSON.parse(scaled.stdout)).toMatchObject({ name: 'web', spec: { instances: 5 } });

    const tasks = await cli(['tasks', 'web', '--json', '--master', addr]);
    expect(JSON.parse(tasks.stdout)).toHaveLength(5);

    // A spec the master refuses: server-side error, with the problems listed.
    const badFile = join(dir, 'bad.json');
    await writeFile(badFile, JSON.stringify({ name: 'bad', type: 'service', instances: 1, command: 'x', resources: { cpus: -1 } }));
    const bad = await cli(['run', badFile, '--master', addr]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('BRL_ERR_INVALID_JOB_SPEC');
    expect(bad.stderr).toContain('resources.cpus');

    expect((await cli(['scale', 'nope', '2', '--master', addr])).code).toBe(4);
    expect((await cli(['kill', 'nope', '--master', addr])).code).toBe(4);
    expect((await cli(['tasks', 'nope', '--master', addr])).code).toBe(4);
    const killed = await cli(['kill', 'web', '--master', addr]);
    expect(killed).toMatchObject({ code: 0 });
    expect(killed.stdout).toContain('killed web');
  });

  it('exits 3 when the master cannot be reached', async () => {
    const r = await cli(['jobs', '--master', '127.0.0.1:1']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cannot reach the master');
    expect((await cli(['status'], { BOREALIS_MASTER: '127.0.0.1:1' })).code).toBe(3);
  });

  it('exits 2 for usage errors and 0 for --help', async () => {
    expect((await cli(['scale', 'web'])).code).toBe(2);
    expect((await cli(['scale', 'web', 'many', '--master', '127.0.0.1:1'])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['jobs', '--bogus-flag'])).code).toBe(2);
    expect((await cli(['jobs', '--master', 'not an address'])).code).toBe(2);
    expect((await cli(['run', '/nonexistent/job.yaml', '--master', '127.0.0.1:1'])).code).toBe(2);
    expect((await cli(['agent', '--master', '127.0.0.1:1'])).code).toBe(2); // --resources is required
    for (const args of [['--help'], ['up', '--help'], ['agent', '--help'], ['run', '--help'], ['scale', '--help']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: borealis');
    }
  });
});
