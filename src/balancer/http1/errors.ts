/**
 * Why an attempt on an upstream connection failed, as stable codes (the way undici's UND_ERR_* are): upstream.ts'
 * classify() maps each to an error kind, a status and whether the request may be retried. Socket errors from
 * node:net (ECONNREFUSED, ECONNRESET, EPIPE...) are passed on as they are; these cover what only we detect.
 */
export const UpstreamCode = {
  /** No TCP connection within the connect timeout. */
  connectTimeout: 'UPSTREAM_CONNECT_TIMEOUT',
  /** The request went out; the response's head did not arrive in time. */
  headersTimeout: 'UPSTREAM_HEADERS_TIMEOUT',
  /** The response body stalled (no byte for the body idle timeout while we were reading). */
  bodyTimeout: 'UPSTREAM_BODY_TIMEOUT',
  /** The endpoint closed the connection before the response ended (before it began, on a reused connection too). */
  closed: 'UPSTREAM_CLOSED',
  /** The response is not HTTP/1.x we can frame: bad status line or header, CL and TE, conflicting CLs, head too large. */
  malformed: 'UPSTREAM_MALFORMED',
  /** A 101 to a request that did not ask to upgrade. */
  unexpectedUpgrade: 'UPSTREAM_UNEXPECTED_UPGRADE',
  /** The pool was closed or destroyed (the endpoint left) while the request waited for a connection. */
  poolClosed: 'UPSTREAM_POOL_CLOSED',
  /** The pool was destroyed while the request was on a connection. */
  destroyed: 'UPSTREAM_DESTROYED',
} as const;
export type UpstreamCodeValue = (typeof UpstreamCode)[keyof typeof UpstreamCode];

export class UpstreamError extends Error {
  readonly code: UpstreamCodeValue;
  constructor(code: UpstreamCodeValue, message: string) {
    super(message);
    this.code = code;
  }
}
