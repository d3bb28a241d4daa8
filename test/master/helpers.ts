import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach } from 'vitest';
import { Master, type MasterOptions } from '../../src/master/index.js';
import { SimAgent, type SimAgentOptions } from '../../src/master/testing/sim-agent.js';
import type { ClusterEvent, JobSpec, TaskView } from '../../src/master/types.js';

/** Generous: the suite must pass on a loaded 2-core CI box; polling returns as soon as it holds. */
export const WAIT_MS = 15_000;

/** Polls `predicate` every few ms until it holds; fails with `what` and the last value after `timeoutMs`. */
export async function waitFor<T>(predicate: () => T | false | undefined | null, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const silent = pino({ level: 'silent' });

/**
 * Per-test masters, sim agents and temp dirs, all stopped and removed in afterEach even when the
 * test failed. Call once at the top of a test file.
 */
export function masterFixture(): {
  tempDir: () => Promise<string>;
  open: (opts?: Partial<MasterOptions>) => Promise<Master>;
  agent: (opts: SimAgentOptions) => SimAgent;
  /** Closes a master early (a restart); afterEach skips it. */
  close: (m: Master) => Promise<void>;
} {
  const dirs: string[] = [];
  const masters = new Set<Master>();
  const agents: SimAgent[] = [];
  afterEach(async () => {
    for (const a of agents.splice(0)) a.stop();
    for (const m of [...masters]) await m.close();
    masters.clear();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'borealis-master-'));
    dirs.push(d);
    return d;
  };
  return {
    tempDir,
    open: async (opts = {}) => {
      const m = await Master.open({
        dataDir: opts.dataDir ?? (await tempDir()),
        fsync: false,
        logger: silent,
        heartbeatIntervalMs: 50,
        heartbeatTimeoutMs: 30_000,
        restartBackoffMs: 20,
        placementRetryMinMs: 20,
        placementRetryMaxMs: 200,
        ...opts,
        allocator: { workers: 1, ...opts.allocator },
      });
      masters.add(m);
      return m;
    },
    agent: (opts) => {
      const a = new SimAgent(opts);
      agents.push(a);
      return a;
    },
    close: async (m) => {
      masters.delete(m);
      await m.close();
    },
  };
}

export function service(name: string, instances: number, extra: Partial<JobSpec> = {}): JobSpec {
  return { name, type: 'service', instances, command: ['sleep', '3600'], resources: { cpus: 1, mem: '1Gi' }, ...extra };
}

export function batch(name: string, instances: number, extra: Partial<JobSpec> = {}): JobSpec {
  return { name, type: 'batch', instances, command: 'true', resources: { cpus: 1, mem: '1Gi' }, ...extra };
}

export function running(m: Master, job: string): TaskView[] {
  return m.listTasks(job).filter((t) => t.state === 'running');
}

/** Records every event from now on. */
export function recordEvents(m: Master): ClusterEvent[] {
  const out: ClusterEvent[] = [];
  m.events.subscribe((e) => out.push(e));
  return out;
}

/** Every event on the bus so far (from its ring), asserting no gaps. */
export function allEvents(m: Master): ClusterEvent[] {
  return m.events.since(0) ?? [];
}

/** The task, or undefined while it does not exist yet. */
export function task(m: { listTasks(job?: string): TaskView[] }, id: string): TaskView | undefined {
  return m.listTasks().find((t) => t.id === id);
}
