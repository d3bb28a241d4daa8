/** Output larger than a pipe's buffer reaches a slow reader whole (process.exit used to cut it at 64 KiB). */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiFixture } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');

describe('borealis tasks --json into a pipe', () => {
  it('writes all of a large answer before exiting, even to a reader that starts late', async () => {
    const { master, addr } = await fx.start();
    // No agents: 800 pending tasks with their reasons, several hundred KiB of JSON.
    await master.submitJob({ name: 'big', type: 'service', instances: 800, command: 'true', resources: { cpus: 0.1, mem: 16 } });
    // As a user would: `borealis tasks --json | (sleep 1; wc -c)`; the reader starts late, so the pipe fills. The
    // same command into a file (written synchronously, never cut) says how many bytes there are.
    const cli = `'${process.execPath}' --import tsx '${join(ROOT, 'src/cli/main.ts')}' tasks --json --master ${addr}`;
    const file = join(await fx.tempDir(), 'tasks.json');
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile('sh', ['-c', `${cli} > '${file}' && ${cli} | (sleep 1; wc -c) && wc -c < '${file}'`], { cwd: ROOT, timeout: 60_000 }, (err, out) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out }),
      );
    });
    expect(code).toBe(0);
    const [piped, whole] = stdout.trim().split(/\s+/).map(Number);
    expect(whole).toBeGreaterThan(128 * 1024);
    expect(piped).toBe(whole);
  });
});
