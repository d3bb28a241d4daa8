/**
 * Connections to endpoints: one undici keep-alive Pool per endpoint, driven through `dispatch()` with the raw
 * handler API (onConnect/onHeaders/onData/onComplete/onError): raw header buffers and a boolean for
 * backpressure, none of the per-request objects, promises and streams of `request()`/`stream()` (about twice as
 * fast through a proxy), and undici's timers for connect, headers and body idle.
 */
import { Pool } from 'undici';
import type { ErrorKind, UpstreamTimeouts } from './types.js';

export const TIMEOUT_DEFAULTS: Readonly<UpstreamTimeouts> = {
  // An endpoint on the same network connects in well under a millisecond; 5 s only covers a SYN retransmit.
  connectMs: 5_000,
  // nginx's proxy_read_timeout and HAProxy's common `timeout server`: long enough for slow pages, short enough to
  // free the client before it gives up itself.
  headersMs: 60_000,
  bodyIdleMs: 60_000,
};

export interface PoolOptions {
  timeouts: UpstreamTimeouts;
  /** Connections per endpoint at most; further requests queue in the pool. */
  maxConnections: number;
  /** Idle keep-alive connections are closed after this long (below typical server keep-alive timeouts of 5 s+). */
  keepAliveMs: number;
}

export const POOL_DEFAULTS: Readonly<Omit<PoolOptions, 'timeouts'>> = {
  // Enough for the balancer's whole concurrency on one endpoint in a small service; bounds the sockets a burst
  // can open against one task.
  maxConnections: 256,
  // Under Node's server default of 5 s, so the endpoint never closes a socket we are about to reuse (undici also
  // honours the endpoint's Keep-Alive: timeout=N hint).
  keepAliveMs: 4_000,
};

export function createPool(origin: string, o: PoolOptions): Pool {
  return new Pool(origin, {
    connections: o.maxConnections,
    // No pipelining: a slow response must not hold up the requests behind it, and least-connections counts requests.
    pipelining: 1,
    keepAliveTimeout: o.keepAliveMs,
    keepAliveMaxTimeout: o.keepAliveMs,
    connectTimeout: o.timeouts.connectMs,
    headersTimeout: o.timeouts.headersMs,
    bodyTimeout: o.timeouts.bodyIdleMs,
  });
}

/** How a failed attempt is answered, and whether another endpoint may be tried. */
export interface Failure {
  kind: ErrorKind;
  status: 502 | 504;
  reason: string;
  /**
   * Nothing reached the endpoint's application (connection refused or timed out, or closed before the request was
   * written): another endpoint may be tried whatever the method. Resets after writing are retried for idempotent
   * methods only (proxy.ts decides).
   */
  beforeRequest: boolean;
  /** Counts towards outlier ejection (the endpoint's fault, not ours or the client's). */
  endpointFault: boolean;
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

export function classify(err: Error & { code?: string }, address: string, connected: boolean): Failure {
  const code = err.code ?? '';
  if (CONNECT_CODES.has(code)) {
    return { kind: 'connect', status: 502, reason: `cannot connect to the endpoint ${address} (${code})`, beforeRequest: true, endpointFault: true };
  }
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { kind: 'connect_timeout', status: 504, reason: `connecting to the endpoint ${address} timed out`, beforeRequest: true, endpointFault: true };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { kind: 'headers_timeout', status: 504, reason: `the endpoint ${address} did not start its response in time`, beforeRequest: false, endpointFault: true };
    case 'UND_ERR_BODY_TIMEOUT':
      return { kind: 'body_timeout', status: 504, reason: `the endpoint ${address} stalled mid-response`, beforeRequest: false, endpointFault: true };
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED':
      // The endpoint left while this request waited for a connection: nothing was sent.
      return { kind: 'reset', status: 502, reason: `the endpoint ${address} went away`, beforeRequest: true, endpointFault: false };
    case 'UND_ERR_INFO':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'HPE_INVALID_CONSTANT':
    case 'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE':
      return { kind: 'protocol', status: 502, reason: `the endpoint ${address} sent a malformed response`, beforeRequest: false, endpointFault: true };
    default:
      if (code.startsWith('HPE_')) {
        return { kind: 'protocol', status: 502, reason: `the endpoint ${address} sent a malformed response (${code})`, beforeRequest: false, endpointFault: true };
      }
      // UND_ERR_SOCKET ("other side closed"), ECONNRESET, EPIPE: the connection died before any response.
      return {
        kind: 'reset',
        status: 502,
        reason: `the endpoint ${address} closed the connection without a response`,
        beforeRequest: !connected,
        endpointFault: true,
      };
  }
}
