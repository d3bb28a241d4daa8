/** Output larger than a pipe's buffer reaches a slow reader whole (process.exit used to cut it at 64 KiB). */
import { spawn } from 'node:child_process';
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
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'tasks', '--json', '--master', addr], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      const ended = new Promise((r) => child.stdout.once('end', r));
      // Do not read until the CLI has filled the pipe and (before the fix) exited.
      child.stdout.pause();
      await new Promise((r) => setTimeout(r, 1_500));
      const chunks: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.stdout.resume();
      const code = await exited;
      await ended;
      const text = Buffer.concat(chunks).toString();
      expect(code).toBe(0);
      expect(text.length).toBeGreaterThan(128 * 1024);
      const parsed = JSON.parse(text) as unknown;
      expect(Array.isArray(parsed) ? parsed : (parsed as { tasks: unknown[] }).tasks).toHaveLength(800);
    } finally {
      clearTimeout(killer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
