/**
 * Messages between the main thread of a threaded balancer (threads.ts: it owns the feed and the endpoint set) and
 * its proxy threads (thread-worker.ts: each one a uWebSockets.js App on the shared port).
 *
 * Slots: every endpoint has one slot number, chosen by the main thread and used by every thread, so one shared
 * Int32Array of active counts (indexed by slot, updated with Atomics) is what every thread's least-connections
 * reads: a request in flight on one thread counts on all of them. A slot is reused only once every thread has
 * confirmed the endpoint's removal and nothing is in flight on it any more.
 */
import type { RouteSpec } from './routes.js';
import type { OutlierOptions, RequestLimits, UpstreamTimeouts } from './types.js';

/** Endpoints a threaded balancer can hold at once: the shared counters are a fixed 16 KiB, never reallocated. */
export const MAX_THREADED_ENDPOINTS = 4096;

export interface ThreadConfig {
  /** MAX_THREADED_ENDPOINTS Int32 active counts. */
  active: SharedArrayBuffer;
  host: string;
  port: number;
  limits: Partial<RequestLimits>;
  timeouts: UpstreamTimeouts;
  outlier: Partial<OutlierOptions>;
  maxConnections: number;
  keepAliveMs: number;
  statsIntervalMs: number;
}

/** Main → thread. */
export type ToThread =
  | { t: 'routes'; services: { name: string; route: Omit<RouteSpec, 'service'> }[] }
  | { t: 'add'; service: string; id: string; host: string; port: number; weight: number; slot: number }
  | { t: 'weight'; id: string; weight: number }
  | { t: 'drain'; id: string }
  | { t: 'remove'; id: string; slot: number }
  | { t: 'close'; graceMs: number };

/** Cumulative figures of one endpoint on one thread. */
export interface ThreadEndpointStats {
  slot: number;
  id: string;
  requests: number;
  /** ERROR_KINDS order. */
  errors: number[];
  ejections: number;
}

export interface ThreadServiceStats {
  name: string;
  requests: number;
  errors: number[];
  /** Latency since the last report, an HDR histogram in compressed base64 (empty when no request ended). */
  window: string;
}

/** Thread → main. */
export type FromThread =
  | { t: 'listening' }
  | { t: 'failed'; message: string }
  | { t: 'removed'; slot: number }
  | { t: 'stats'; endpoints: ThreadEndpointStats[]; services: ThreadServiceStats[]; refused: number[] }
  | { t: 'closed' };
