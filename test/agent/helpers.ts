/** Shared plumbing for the agent suites: temp dirs, free ports, bounded waits, and cleanup of what we started. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../../src/agent/isolation/proc.js';
import type { TaskRunner } from '../../src/agent/executor/task-runner.js';

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `borealis-${prefix}-`));
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A port the kernel just handed out for listen(0), released for the task to take. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Waits until `cond` holds. The bound only turns a hang into a readable failure; no test asserts on how long
 * anything took.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, boundMs = 15_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(10);
  }
}

export async function readIfExists(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

/** Everything a test started, killed by pid or group at the end whatever the test's outcome. */
export class Cleanup {
  readonly #runners: TaskRunner[] = [];
  readonly #pids = new Set<number>();
  readonly #dirs: string[] = [];

  runner<T extends TaskRunner>(r: T): T {
    this.#runners.push(r);
    return r;
  }

  pid(pid: number): void {
    this.#pids.add(pid);
  }

  dir(dir: string): string {
    this.#dirs.push(dir);
    return dir;
  }

  async run(): Promise<void> {
    for (const r of this.#runners.splice(0)) {
      if (r.state !== 'exited') await r.kill('killed', { gracePeriodMs: 0 });
    }
    for (const pid of this.#pids) {
      if (isAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    this.#pids.clear();
    for (const dir of this.#dirs.splice(0)) await removeTempDir(dir);
  }
}

const ROOT = path.join(import.meta.dirname, '..', '..');

/** A real `borealis agent` process, with everything it printed, line by line. */
export interface AgentProc {
  child: ChildProcess;
  log: string[];
  exited: Promise<number | null>;
}

/**
 * Starts `borealis agent <args>` through tsx (no build needed). `cleanup` kills it by pid if the test ends before
 * stopping it; stopAgents() stops it the way an operator would.
 */
export function spawnAgent(args: string[], cleanup: Cleanup): AgentProc {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'agent', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanup.pid(child.pid!);
  const log: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => log.push(...d.toString().split('\n').filter(Boolean)));
  return { child, log, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

/** SIGTERM to each agent still running (SIGKILL after 10 s), and waits for every one to exit. */
export async function stopAgents(procs: readonly AgentProc[]): Promise<void> {
  for (const a of procs) {
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGTERM');
    const t = setTimeout(() => a.child.kill('SIGKILL'), 10_000);
    await a.exited;
    clearTimeout(t);
  }
}
