import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, journalFixture } from './helpers.js';

const fx = journalFixture();
const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    }
  }
});

interface Run {
  readyLastSeq: number;
  acked: number[];
}

/** Starts the child on `dir`, SIGKILLs it once `minAcks` appends resolved (plus a little jitter). */
function runAndKill(dir: string, minAcks: number, jitterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    let acks = 0;
    let killing = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      acks += chunk.split('\n').length - 1;
      if (!killing && acks > minAcks) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), jitterMs);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited with ${code ?? signal}: ${err}`));
      const lines = out.split('\n').filter((l) => l.length > 0);
      const ready = /^ready (\d+) (\d+)$/.exec(lines[0] ?? '');
      if (!ready) return reject(new Error(`child never became ready: ${out.slice(0, 200)} ${err}`));
      resolve({ readyLastSeq: Number(ready[1]), acked: lines.slice(1).map(Number) });
    });
  });
}

describe('Journal crash safety', () => {
  it('keeps every acknowledged append across repeated SIGKILLs of a writer process', async () => {
    const dir = await fx.tempDir();
    let prevLast = 0;
    for (const [round, jitter] of [0, 7, 23].entries()) {
      const run = await runAndKill(dir, 300 + round * 100, jitter);
      expect(run.readyLastSeq).toBe(prevLast); // the child resumed exactly where recovery left off
      expect(run.acked.length).toBeGreaterThan(300);
      expect(new Set(run.acked).size).toBe(run.acked.length);

      const j = await fx.open(dir, { fsync: true });
      const seqs = (await collect(j.replay())).map((r) => r.seq);
      await j.close();
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1)); // no gaps, nothing reordered
      const present = new Set(seqs);
      const lost = run.acked.filter((s) => !present.has(s));
      expect(lost).toEqual([]);
      expect(seqs.length).toBeGreaterThanOrEqual(Math.max(...run.acked));
      prevLast = seqs.length;
    }
  });
});
