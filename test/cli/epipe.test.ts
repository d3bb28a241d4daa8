/** `borealis events | head -1`: when the reader of its output goes away, the CLI stops quietly. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiFixture } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');

describe('borealis events piped into a reader that stops', () => {
  it('exits 0 without an error when its stdout pipe closes', async () => {
    const { master, addr } = await fx.start();
    // Enough events that the stream keeps writing after the reader has gone.
    for (let i = 0; i < 20; i++) await master.submitJob({ name: `j${i}`, type: 'service', instances: 1, command: 'true', resources: { cpus: 0.01, mem: 16 } });
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'events', '--since', '0', '--master', addr], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Listened for from the start: the CLI may well exit while the jobs below are still being submitted.
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      // Like `head -1`: take the first line, then close the pipe.
      const first = await new Promise<string>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`the CLI exited (${code}) before its first line: ${stderr}`)));
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const nl = buf.indexOf('\n');
          if (nl >= 0) {
            child.stdout.destroy();
            resolve(buf.slice(0, nl));
          }
        });
      });
      // Keep the stream busy so the CLI writes into the closed pipe.
      for (let i = 0; i < 20; i++) await master.submitJob({ name: `k${i}`, type: 'service', instances: 1, command: 'true', resources: { cpus: 0.01, mem: 16 } });
      const [code, signal] = await exited;
      expect(first.length).toBeGreaterThan(0);
      expect(signal).toBeNull();
      expect(code).toBe(0);
      expect(stderr).not.toContain('Unhandled');
      expect(stderr).not.toContain('EPIPE');
    } finally {
      clearTimeout(killer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
