/**
 * What a load run is asked to do, checked once: every bad value becomes one problem naming its option, and a run with
 * any problem is refused before a single request is sent.
 */
import { InvalidArgumentError, type FieldProblem } from '../src/api/errors.js';
import { isLoopbackHost } from './loopback.js';

export type LoadMode = 'open' | 'closed';

export interface LoadOptions {
  /** An http:// URL; its host must be loopback (127.0.0.0/8, localhost, ::1) unless `allowRemote`. */
  url: string;
  /** Default: 'open' when `rate` is given, 'closed' otherwise. */
  mode?: LoadMode;
  /** Requests per second, open loop only (required there). */
  rate?: number;
  /** The measured window, after the warmup. Default 10 s. */
  durationMs?: number;
  /** Load sent before the measured window and left out of every number. Default 0. */
  warmupMs?: number;
  /** Keep-alive connections. Default 10 (as wrk). */
  connections?: number;
  /** Requests outstanding per connection (HTTP/1.1 pipelining). Default 1. */
  pipelining?: number;
  /**
   * Open loop: outstanding requests at most; due requests beyond it wait (still timed from their intended send
   * time) and are counted in `queued`. Default connections × pipelining, so no request ever waits inside undici.
   */
  maxInFlight?: number;
  /** Default GET, or POST when there is a body. */
  method?: string;
  /** Extra request headers, in order; a name may repeat. */
  headers?: readonly (readonly [string, string])[] | Readonly<Record<string, string>>;
  body?: string | Uint8Array;
  /** Connect, response-headers and body-idle timeout, each; also how long the run drains at its end. Default 5 s. */
  timeoutMs?: number;
  /** Allow a target that is not this machine's loopback. */
  allowRemote?: boolean;
  /** Aborting it ends the measured window now; outstanding requests still drain (up to the timeout). */
  signal?: AbortSignal;
}

/** LoadOptions with every default filled in and every value checked. */
export interface ResolvedOptions {
  url: string;
  origin: string;
  /** Path and query, as sent on the request line. */
  path: string;
  mode: LoadMode;
  /** null in closed loop. */
  rate: number | null;
  durationMs: number;
  warmupMs: number;
  connections: number;
  pipelining: number;
  maxInFlight: number;
  method: string;
  /** Flat name/value list, the shape undici takes without converting. */
  headers: string[];
  body: Buffer | null;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

export const LOAD_DEFAULTS = {
  durationMs: 10_000,
  warmupMs: 0,
  connections: 10,
  pipelining: 1,
  timeoutMs: 5_000,
} as const;

/** Latencies are recorded up to 60 s (the histogram's ceiling), so no single timeout may be longer. */
export const MAX_TIMEOUT_MS = 60_000;
/** A day: long enough for any soak, short enough that a typo cannot leave load running for good. */
const MAX_WINDOW_MS = 86_400_000;
const MAX_CONNECTIONS = 10_000;
/** Deeper pipelines only measure the server's read buffer. */
const MAX_PIPELINING = 1_024;
/** Bounds the request handlers kept ready (one per outstanding request). */
const MAX_IN_FLIGHT = 1_000_000;
const MAX_RATE = 10_000_000;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers undici manages itself (framing and connection reuse) and refuses per request. */
const FORBIDDEN_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'content-length']);

export function resolveOptions(o: LoadOptions): ResolvedOptions {
  const problems: FieldProblem[] = [];
  const bad = (path: string, message: string): void => void problems.push({ path, message });

  let url: URL | null = null;
  try {
    url = new URL(o.url);
  } catch {
    bad('url', `not a URL: ${JSON.stringify(o.url)}`);
  }
  if (url !== null) {
    if (url.protocol !== 'http:') bad('url', `only http:// URLs are supported, got ${url.protocol}//`);
    else if (!o.allowRemote && !isLoopbackHost(url.hostname)) {
      bad('url', `${url.hostname} is not a loopback address (127.0.0.0/8, localhost, ::1); load goes only there unless allowRemote is set`);
    }
    if (url.username !== '' || url.password !== '') bad('url', 'credentials in the URL are not supported (send an authorization header)');
  }

  const mode: LoadMode = o.mode ?? (o.rate === undefined ? 'closed' : 'open');
  if (mode !== 'open' && mode !== 'closed') bad('mode', `must be open or closed, got ${JSON.stringify(mode)}`);
  if (mode === 'open') {
    if (o.rate === undefined) bad('rate', 'the open loop needs a rate (requests per second)');
    else checkNumber(bad, 'rate', o.rate, { min: 0, minExclusive: true, max: MAX_RATE });
  } else if (o.rate !== undefined) {
    bad('rate', 'a rate applies to the open loop only (the closed loop sends as fast as responses come back)');
  }
  if (mode === 'closed' && o.maxInFlight !== undefined) {
    bad('maxInFlight', 'applies to the open loop only (the closed loop keeps connections × pipelining outstanding)');
  }

  const durationMs = o.durationMs ?? LOAD_DEFAULTS.durationMs;
  checkNumber(bad, 'durationMs', durationMs, { min: 0, minExclusive: true, max: MAX_WINDOW_MS });
  const warmupMs = o.warmupMs ?? LOAD_DEFAULTS.warmupMs;
  checkNumber(bad, 'warmupMs', warmupMs, { min: 0, max: MAX_WINDOW_MS });
  const timeoutMs = o.timeoutMs ?? LOAD_DEFAULTS.timeoutMs;
  checkNumber(bad, 'timeoutMs', timeoutMs, { min: 0, minExclusive: true, max: MAX_TIMEOUT_MS });
  const connections = o.connections ?? LOAD_DEFAULTS.connections;
  checkNumber(bad, 'connections', connections, { min: 1, max: MAX_CONNECTIONS, integer: true });
  const pipelining = o.pipelining ?? LOAD_DEFAULTS.pipelining;
  checkNumber(bad, 'pipelining', pipelining, { min: 1, max: MAX_PIPELINING, integer: true });
  const maxInFlight = o.maxInFlight ?? connections * pipelining;
  checkNumber(bad, 'maxInFlight', maxInFlight, { min: 1, max: MAX_IN_FLIGHT, integer: true });

  const body = o.body === undefined ? null : Buffer.from(o.body);
  const method = (o.method ?? (body === null ? 'GET' : 'POST')).toUpperCase();
  if (!TOKEN.test(method)) bad('method', `not an HTTP method: ${JSON.stringify(o.method)}`);
  if (method === 'CONNECT') bad('method', 'CONNECT opens a tunnel, not a request to measure');

  const headers: string[] = [];
  const pairs = o.headers === undefined ? [] : Array.isArray(o.headers) ? o.headers : Object.entries(o.headers);
  for (const [name, value] of pairs as Iterable<readonly [string, string]>) {
    if (!TOKEN.test(name)) bad('headers', `not a header name: ${JSON.stringify(name)}`);
    else if (FORBIDDEN_HEADERS.has(name.toLowerCase())) bad('headers', `${name} is set by the client itself and cannot be given`);
    else if (/[\r\n\0]/.test(value)) bad('headers', `the value of ${name} holds a line break or NUL`);
    else headers.push(name, value);
  }

  if (problems.length > 0 || url === null) {
    const first = problems[0]!;
    throw new InvalidArgumentError(`invalid load options: ${first.path}: ${first.message}`, problems);
  }
  return {
    url: url.href,
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    mode,
    rate: mode === 'open' ? o.rate! : null,
    durationMs,
    warmupMs,
    connections,
    pipelining,
    maxInFlight: mode === 'open' ? maxInFlight : connections * pipelining,
    method,
    headers,
    body,
    timeoutMs,
    signal: o.signal,
  };
}

function checkNumber(
  bad: (path: string, message: string) => void,
  path: string,
  value: number,
  rule: { min: number; minExclusive?: boolean; max: number; integer?: boolean },
): void {
  const below = rule.minExclusive ? value <= rule.min : value < rule.min;
  if (typeof value !== 'number' || !Number.isFinite(value) || below || value > rule.max) {
    bad(path, `must be ${rule.minExclusive ? `> ${rule.min}` : `≥ ${rule.min}`} and ≤ ${rule.max}, got ${String(value)}`);
  } else if (rule.integer && !Number.isInteger(value)) {
    bad(path, `must be a whole number, got ${value}`);
  }
}
