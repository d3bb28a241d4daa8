/**
 * The balancer's public shapes: what it publishes (`balancer_stats` events), its error kinds, and its options.
 */

/** What the balancer logs through (any pino logger fits). */
export interface BalancerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Why a request failed, per endpoint (or per service for `no_endpoint`). A closed set: metrics label values and
 * the `x-borealis-error` response header use these names, so scripts and dashboards can rely on them.
 * - connect: the endpoint refused or dropped the connection attempt (502, retried elsewhere when safe)
 * - connect_timeout: no connection within the connect timeout (504, retried elsewhere when safe)
 * - reset: the connection closed before a response began (502, retried when safe)
 * - headers_timeout: the endpoint took too long to begin its response (504, not retried: it may be working on it)
 * - body_timeout: the response body stalled mid-way (the client's connection is closed: its status is gone)
 * - status_5xx: the endpoint answered 5xx (forwarded as is; counts towards ejection)
 * - protocol: the endpoint's response was malformed (502)
 * - aborted: the client went away before the response ended
 * - no_endpoint: the service has no endpoint to send to (503)
 */
export const ERROR_KINDS = [
  'connect',
  'connect_timeout',
  'reset',
  'headers_timeout',
  'body_timeout',
  'status_5xx',
  'protocol',
  'aborted',
  'no_endpoint',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];
/** Index of each kind in per-endpoint counter rows. */
export const ErrorKindIndex: Readonly<Record<ErrorKind, number>> = Object.fromEntries(ERROR_KINDS.map((k, i) => [k, i])) as Record<
  ErrorKind,
  number
>;

/** Refusals made before any endpoint is involved (per balancer, labelled by reason in metrics). */
export const REFUSAL_KINDS = ['bad_request', 'headers_too_large', 'unsupported_coding', 'no_route'] as const;
export type RefusalKind = (typeof REFUSAL_KINDS)[number];

/** `starting`: taking requests but has never answered one yet (see outlier.ts: not ejected while it starts). */
export type EndpointStateName = 'starting' | 'up' | 'draining' | 'ejected';

/** One endpoint in a `balancer_stats` event. Counts are over the interval, except `active`, `weight`, `ejections`. */
export interface EndpointStats {
  /** The task id (fed by a master) or host:port (static). */
  id: string;
  /** host:port the balancer connects to. */
  address: string;
  state: EndpointStateName;
  weight: number;
  /** Requests and WebSockets in flight now. */
  active: number;
  requests: number;
  /** requests / interval, per second. */
  rps: number;
  /** Errors over the interval, by kind (kinds with none are left out). */
  errors: Partial<Record<ErrorKind, number>>;
  /** Times ejected by outlier detection since it joined. */
  ejections: number;
}

export interface ServiceStats {
  name: string;
  requests: number;
  rps: number;
  active: number;
  errors: Partial<Record<ErrorKind, number>>;
  /** Latency percentiles over the interval, in ms (0 when there were no requests). */
  p50Ms: number;
  p99Ms: number;
  endpoints: EndpointStats[];
}

/**
 * `data` of a `balancer_stats` event: one balancer's figures over the last interval (about a second), published
 * only when something changed (a request, an ejection, an endpoint coming or going).
 */
export interface BalancerStats {
  /** Which balancer: its listen address (several may front one cluster). */
  balancer: string;
  intervalMs: number;
  services: ServiceStats[];
  /** Requests refused before routing over the interval (malformed, headers too large, no route). */
  refused: Partial<Record<RefusalKind, number>>;
}

/** Per-request timeouts towards endpoints. */
export interface UpstreamTimeouts {
  /** TCP connect. */
  connectMs: number;
  /** From the request being sent to the response's status line and headers. */
  headersMs: number;
  /** Silence between two chunks of a response body. */
  bodyIdleMs: number;
}

/** Passive health: Envoy's consecutive-5xx outlier detection, with its names. */
export interface OutlierOptions {
  /** Consecutive connect errors, resets or 5xx that eject an endpoint. */
  consecutiveFailures: number;
  /** The first ejection lasts this long; the n-th lasts n times as long, up to maxEjectionMs. */
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** At most this share (percent) of a service's endpoints are ejected at once; at least one may always be. */
  maxEjectionPercent: number;
}

/** Limits on what a client may send before anything is forwarded. */
export interface RequestLimits {
  /** Header fields per request; more is 431. */
  maxHeaders: number;
  /** Bytes of the request line and header fields together; more is 431. */
  maxHeaderBytes: number;
}
