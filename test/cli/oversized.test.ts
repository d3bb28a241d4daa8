/** A job file over the master's body limit is reported as such (exit 1), never as an unreachable master (exit 3). */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiFixture } from '../api/helpers.js';

const fx = apiFixture();
const ROOT = join(import.meta.dirname, '..', '..');

function runCli(file: string, addr: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'run', file, '--master', addr],
      { cwd: ROOT, env: { ...process.env, BOREALIS_MASTER: '' }, timeout: 60_000, maxBuffer: 1 << 20 },
      (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

describe('borealis run with an oversized job file', () => {
  it('exits 1 saying the request is over the limit, and the master keeps working', async () => {
    const { master, addr } = await fx.start();
    const dir = await fx.tempDir();
    const file = join(dir, 'huge.json');
    // 20 MiB: far past the 1 MiB default, so the master cuts the upload short.
    await writeFile(file, JSON.stringify({ name: 'huge', type: 'service', instances: 1, command: `echo ${'x'.repeat(20 * 1024 * 1024)}`, resources: { cpus: 0.1, mem: 16 } }));
    const r = await runCli(file, addr);
    expect(r.stderr).toMatch(/PAYLOAD_TOO_LARGE|over its body limit/);
    expect(r.code).toBe(1);
    expect(master.listJobs()).toEqual([]);
    await master.submitJob({ name: 'small', type: 'service', instances: 1, command: 'true', resources: { cpus: 0.1, mem: 16 } });
    expect(master.listJobs().map((j) => j.name)).toEqual(['small']);
  });

  it('says so too when the server resets the connection mid-upload and its 413 is lost', async () => {
    // A server that reads the start of the request, then resets the connection (what a peer that stops reading
    // an oversized body can look like from the client).
    const sockets: Socket[] = [];
    const server = createServer((s) => {
      sockets.push(s);
      s.once('data', () => s.resetAndDestroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const dir = await fx.tempDir();
      const file = join(dir, 'huge.json');
      await writeFile(file, JSON.stringify({ name: 'huge', type: 'service', instances: 1, command: `echo ${'x'.repeat(8 * 1024 * 1024)}`, resources: { cpus: 0.1, mem: 16 } }));
      const r = await runCli(file, `127.0.0.1:${(server.address() as AddressInfo).port}`);
      expect(r.stderr).toMatch(/over its body limit/);
      expect(r.code).toBe(1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
