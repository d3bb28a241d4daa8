/** `npm run bench` usage errors exit 2 with the flag named, as the borealis and borealis-loadgen commands do. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

function bench(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'scheduling.ts'), ...args], { cwd: ROOT, timeout: 30_000 }, (err, _out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

describe('bench usage', () => {
  it('exits 2 naming the bad flag, and 0 for --help', async () => {
    const [bad, choice, help] = await Promise.all([bench(['--nodes', 'abc']), bench(['--scenario', 'nope']), bench(['--help'])]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("option '--nodes <n>' argument 'abc' is invalid");
    expect(choice.code).toBe(2);
    expect(choice.stderr).toContain('Allowed choices are placement, trace, submit, balancer, events');
    expect(help.code).toBe(0);
  });
});
