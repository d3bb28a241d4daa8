/** `borealis up` on a data directory another master holds: refused with the holder named, nothing started. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiFixture } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');

describe('borealis up', () => {
  it('exits 1 naming the master that holds its data directory, without a stack trace', async () => {
    const dataDir = await fx.tempDir();
    await fx.start({ dataDir });
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'up', '--data-dir', dataDir, '--agents', '0', '--listen', '127.0.0.1:0', '--balancer-listen', '127.0.0.1:0'],
        { cwd: ROOT, env: { ...process.env, BOREALIS_MASTER: '' }, timeout: 30_000 },
        (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('BRL_ERR_DATA_DIR_LOCKED');
    expect(r.stderr).toContain(`pid ${process.pid}`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});
