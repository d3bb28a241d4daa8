import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach } from 'vitest';
import { type ApiServer, startApiServer } from '../../src/api/index.js';
import { Master, type MasterOptions } from '../../src/master/index.js';

export const silent = pino({ level: 'silent' });

/** Polls until `predicate` holds (returns its value) or fails naming `what`. */
export async function waitFor<T>(predicate: () => T | false | undefined | null | Promise<T | false | undefined | null>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A master with its HTTP API on 127.0.0.1:0, both closed (and the data dir removed) after each test. */
export function apiFixture(): {
  tempDir: () => Promise<string>;
  start: (opts?: Partial<MasterOptions>, server?: { bodyLimitBytes?: number; port?: number }) => Promise<{ master: Master; api: ApiServer; addr: string }>;
  /** Stops a master and its server early (a restart); afterEach skips them. */
  stop: (m: Master, api: ApiServer) => Promise<void>;
  onCleanup: (fn: () => Promise<void> | void) => void;
} {
  const dirs: string[] = [];
  const running: { master: Master; api: ApiServer }[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
    for (const r of running.splice(0)) {
      await r.master.close();
      await r.api.close();
    }
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const tempDir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'borealis-api-'));
    dirs.push(d);
    return d;
  };
  return {
    tempDir,
    start: async (opts = {}, server = {}) => {
      const master = await Master.open({
        dataDir: opts.dataDir ?? (await tempDir()),
        fsync: false,
        logger: silent,
        heartbeatIntervalMs: 100,
        heartbeatTimeoutMs: 30_000,
        restartBackoffMs: 50,
        placementRetryMinMs: 20,
        placementRetryMaxMs: 200,
        ...opts,
        allocator: { workers: 1, ...opts.allocator },
      });
      const api = await startApiServer(
        master,
        { host: '127.0.0.1', port: server.port ?? 0 },
        server.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: server.bodyLimitBytes },
      );
      running.push({ master, api });
      return { master, api, addr: `${api.address.host}:${api.address.port}` };
    },
    stop: async (m, api) => {
      const i = running.findIndex((r) => r.master === m);
      if (i >= 0) running.splice(i, 1);
      await m.close();
      await api.close();
    },
    onCleanup: (fn) => cleanups.push(fn),
  };
}
