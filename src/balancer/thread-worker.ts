/**
 * One proxy thread of a threaded balancer (threads.ts starts them): its own uWebSockets.js App on the shared port
 * (SO_REUSEPORT: the kernel spreads connections over the threads), its own proxy, upstream pools and outlier
 * detection, and an endpoint registry mirrored from the main thread's messages, whose active counts are the shared
 * Int32Array (thread-protocol.ts explains the slots).
 *
 * Outlier ejection is decided per thread, from the thread's own attempts: sharing it would mean crossing threads on
 * every failure (or a shared failure streak that two threads race on), while a dead endpoint is seen failing by
 * every thread that sends to it within a few requests anyway. The cost is at most `threads ×
 * consecutiveFailures` failed attempts before all threads have ejected it, and those are retried elsewhere when
 * safe. Ejections are summed in the main thread's metrics.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { NATIVE_ENV, loadNative } from '../transport/native.js';
import { EndpointRegistry, SlotState } from './endpoints.js';
import { UwsFront } from './front-uws.js';
import { BalancerMetrics } from './metrics.js';
import { OutlierDetector } from './outlier.js';
import { Proxy } from './proxy.js';
import { type FromThread, MAX_THREADED_ENDPOINTS, type ThreadConfig, type ThreadEndpointStats, type ToThread } from './thread-protocol.js';
import { ERROR_KINDS, REFUSAL_KINDS } from './types.js';
import type { UwsSharedModule } from './uws-types.js';

const port = parentPort!;
const cfg = workerData as ThreadConfig;
const post = (m: FromThread): void => port.postMessage(m);
const KINDS = ERROR_KINDS.length;

const registry = new EndpointRegistry({ shared: true, capacity: MAX_THREADED_ENDPOINTS });
const table = registry.table;
// Every thread's counts in one array; slots are the main thread's (the next `add` names the one to use), and
// freeing one is the main thread's decision too (it reuses it only when no thread can still hold it).
table.active = new Int32Array(cfg.active);
let nextSlot = -1;
table.alloc = (): number => {
  const slot = nextSlot;
  if (slot < 0 || slot >= table.capacity) throw new RangeError(`no slot given for a new endpoint (${slot})`);
  table.reset(slot);
  return slot;
};
table.free = (slot: number): void => {
  table.state[slot] = SlotState.FREE;
};

const metrics = new BalancerMetrics(registry);
const outlier = new OutlierDetector(registry, cfg.outlier, () => (metrics.changed = true));
const proxy = new Proxy(registry, outlier, metrics, {
  limits: cfg.limits as never,
  pool: { timeouts: cfg.timeouts, maxConnections: cfg.maxConnections, keepAliveMs: cfg.keepAliveMs },
});
// Refusals are counted here by kind (BalancerMetrics keeps its own count private).
const refused = new Array<number>(REFUSAL_KINDS.length).fill(0);
const countRefused = metrics.refused.bind(metrics);
metrics.refused = (kind) => {
  refused[REFUSAL_KINDS.indexOf(kind)]++;
  countRefused(kind);
};

const load = loadNative({ ...process.env, [NATIVE_ENV]: '1' });
const front = new UwsFront(load.uws as UwsSharedModule, proxy, { sharedPort: true });

function apply(m: ToThread): void {
  switch (m.t) {
    case 'routes': {
      const names = new Set(m.services.map((s) => s.name));
      for (const s of m.services) registry.setService(s.name, s.route);
      for (const name of [...registry.services.keys()]) if (!names.has(name)) registry.removeService(name);
      return;
    }
    case 'add': {
      // A slot freed by the main thread may still name this thread's copy of the endpoint that held it (it left
      // while another thread's request was in flight): that copy's pool is closed now.
      const stale = registry.bySlot[m.slot];
      if (stale !== undefined && stale.id !== m.id) void stale.dispatcher?.close().catch(() => undefined);
      nextSlot = m.slot;
      registry.upsert(m.service, { id: m.id, host: m.host, port: m.port, weight: m.weight });
      nextSlot = -1;
      return;
    }
    case 'weight': {
      const ep = registry.byId.get(m.id);
      if (ep) registry.upsert(ep.service.name, { id: ep.id, host: ep.host, port: ep.port, weight: m.weight });
      return;
    }
    case 'drain':
      registry.drain(m.id);
      return;
    case 'remove':
      registry.remove(m.id);
      post({ t: 'removed', slot: m.slot });
      return;
    case 'close':
      void shutdown(m.graceMs);
      return;
  }
}

function report(): void {
  const endpoints: ThreadEndpointStats[] = [];
  for (const ep of registry.byId.values()) {
    const s = ep.slot;
    endpoints.push({ slot: s, id: ep.id, requests: table.requests[s], errors: Array.from(table.errors.subarray(s * KINDS, s * KINDS + KINDS)), ejections: ep.ejectedTimes });
  }
  const services = [...registry.services.values()].map((s) => {
    const w = s.window;
    const window = w !== null && w.totalCount > 0 ? encodeIntoCompressedBase64(w) : '';
    w?.reset();
    return { name: s.name, requests: s.requests, errors: Array.from(s.errors), window };
  });
  post({ t: 'stats', endpoints, services, refused: [...refused] });
}

const timer = setInterval(report, cfg.statsIntervalMs);
timer.unref();

async function shutdown(graceMs: number): Promise<void> {
  clearInterval(timer);
  await front.close(graceMs);
  report();
  await registry.close();
  post({ t: 'closed' });
  port.close();
}

port.on('message', apply);
if (front.bind(cfg.host, cfg.port) === null) {
  post({ t: 'failed', message: `uWebSockets.js could not listen on ${cfg.host}:${cfg.port} (shared)` });
  port.close();
} else {
  post({ t: 'listening' });
}
