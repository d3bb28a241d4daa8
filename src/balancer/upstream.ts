/**
 * Connections to endpoints: one keep-alive HTTP/1.1 pool per endpoint (http1/: our own connections over
 * node:net and a hand-written response parser, driven through `dispatch()` with undici's raw handler shape),
 * the defaults of its timeouts and limits, and what a failed attempt means for the client and the endpoint.
 */
import { type Http1PoolOptions, Http1Pool } from './http1/pool.js';
import type { UpstreamPool } from './http1/contract.js';
import { UpstreamCode } from './http1/errors.js';
import type { ErrorKind, UpstreamTimeouts } from './types.js';

export const TIMEOUT_DEFAULTS: Readonly<UpstreamTimeouts> = {
  // An endpoint on the same network connects in well under a millisecond; 5 s only covers a SYN retransmit.
  connectMs: 5_000,
  // nginx's proxy_read_timeout and HAProxy's common `timeout server`: long enough for slow pages, short enough to
  // free the client before it gives up itself.
  headersMs: 60_000,
  bodyIdleMs: 60_000,
};

/** Per-endpoint pool settings: the upstream client's own (http1/pool.ts). */
export type PoolOptions = Http1PoolOptions;

export const POOL_DEFAULTS: Readonly<Omit<PoolOptions, 'timeouts'>> = {
  // Enough for the balancer's whole concurrency on one endpoint in a small service; bounds the sockets a burst
  // can open against one task.
  maxConnections: 256,
  // Under Node's server default of 5 s (plus the pool's sweep tick of at most 250 ms), so the endpoint never closes
  // a socket we are about to reuse; an endpoint's shorter Keep-Alive: timeout=N wins, less a second.
  keepAliveMs: 4_000,
};

export function createPool(host: string, port: number, o: PoolOptions): UpstreamPool {
  return new Http1Pool(host, port, o);
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
    case UpstreamCode.connectTimeout:
      return { kind: 'connect_timeout', status: 504, reason: `connecting to the endpoint ${address} timed out`, beforeRequest: true, endpointFault: true };
    case UpstreamCode.headersTimeout:
      return { kind: 'headers_timeout', status: 504, reason: `the endpoint ${address} did not start its response in time`, beforeRequest: false, endpointFault: true };
    case UpstreamCode.bodyTimeout:
      return { kind: 'body_timeout', status: 504, reason: `the endpoint ${address} stalled mid-response`, beforeRequest: false, endpointFault: true };
    case UpstreamCode.poolClosed:
      // The endpoint left while this request waited for a connection: nothing was sent.
      return { kind: 'reset', status: 502, reason: `the endpoint ${address} went away`, beforeRequest: true, endpointFault: false };
    case UpstreamCode.destroyed:
      // The balancer is shutting down: not the endpoint's doing.
      return { kind: 'reset', status: 502, reason: `the endpoint ${address} went away`, beforeRequest: !connected, endpointFault: false };
    case UpstreamCode.malformed:
    case UpstreamCode.unexpectedUpgrade:
      return { kind: 'protocol', status: 502, reason: `the endpoint ${address} sent a malformed response`, beforeRequest: false, endpointFault: true };
    default:
      // UPSTREAM_CLOSED, ECONNRESET, EPIPE: the connection died before the response ended. On a reused
      // connection too (the endpoint closed it as we wrote): only a request not yet handed over is safe to resend.
      return {
        kind: 'reset',
        status: 502,
        reason: `the endpoint ${address} closed the connection without a response`,
        beforeRequest: !connected,
        endpointFault: true,
      };
  }
}
