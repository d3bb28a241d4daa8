/**
 * What both servers do with a request once they have read its method, target and headers: route it to a handler
 * or to a 404/405, turn whatever a handler throws into the `{code, message, problems?}` body, render a response
 * body, and check a WebSocket upgrade (endpoint, subprotocol, `accept()`). node-server.ts and uws-server.ts only
 * move bytes; every answer a client can see is decided here, once.
 */
import { BorealisError, ErrorCodes, isBorealisError } from '../api/errors.js';
import { Router } from './router.js';
import {
  DEFAULT_BODY_LIMIT_BYTES,
  type ErrorBody,
  type HttpHandler,
  type HttpMethod,
  type HttpResponse,
  type HttpServerOptions,
  type WsRoute,
  type WsUpgradeRequest,
} from './types.js';

const METHODS = new Set<string>(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * An oversized body is read and discarded up to this multiple of the limit before the 413 goes out, so an
 * ordinary client (which writes the whole body before reading) sees the response rather than a reset; past it
 * the connection is simply closed.
 */
export const DISCARD_FACTOR = 8;

/** Agent frames are small protobufs; 4 MiB bounds a Register that lists many thousands of tasks. */
export const DEFAULT_WS_MAX_PAYLOAD = 4 * 1024 * 1024;

/** Requests in flight and WebSockets that ignore the close handshake get this long once close() is called. */
export const CLOSE_GRACE_MS = 1_000;

export type InternalErrorHook = (err: unknown, req: { method: string; path: string }) => void;

export type Resolved =
  | { kind: 'route'; handler: HttpHandler; params: Record<string, string> }
  /** 404 or 405 (with Allow): answer it without reading the body. */
  | { kind: 'refuse'; response: HttpResponse };

/** A refused WebSocket handshake: a plain HTTP response with the usual error body, then the connection closes. */
export interface UpgradeRefusal {
  status: number;
  body: string;
}

export class Dispatcher {
  readonly router = new Router();
  readonly bodyLimit: number;
  readonly onInternalError: InternalErrorHook;

  constructor(opts: HttpServerOptions) {
    const limit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
    if (!Number.isInteger(limit) || limit <= 0) throw new TypeError(`bodyLimitBytes must be a positive integer, got ${limit}`);
    this.bodyLimit = limit;
    this.onInternalError = opts.onInternalError ?? (() => undefined);
  }

  add(method: HttpMethod, path: string, handler: HttpHandler): void {
    this.router.add(method, path, handler);
  }

  /** The handler for `method path`, or the 404/405 to send instead. */
  resolve(method: string, path: string): Resolved {
    // HEAD is GET without the body (RFC 9110 9.3.2): GET's handler answers it; both servers send no body.
    const routed = method === 'HEAD' ? 'GET' : method;
    const m = METHODS.has(routed) ? this.router.match(routed, path) : this.router.match('', path);
    if (m.kind === 'found') return { kind: 'route', handler: m.handler, params: m.params };
    if (m.kind === 'none') return { kind: 'refuse', response: errorResponse(new BorealisError(ErrorCodes.NOT_FOUND, `no route ${method} ${path}`)) };
    const methods = new Set<string>(m.allow);
    if (methods.has('GET')) methods.add('HEAD');
    const allow = [...methods].join(', ');
    const err = new BorealisError(ErrorCodes.METHOD_NOT_ALLOWED, `${method} is not allowed on ${path} (allowed: ${allow})`);
    return { kind: 'refuse', response: errorResponse(err, { Allow: allow }) };
  }

  /** The response for anything a handler (or the body reader) threw; a non-BorealisError is a 500 and reported. */
  failure(err: unknown, method: string, path: string): HttpResponse {
    if (isBorealisError(err)) return errorResponse(err, err.code === ErrorCodes.PAYLOAD_TOO_LARGE ? CLOSE : undefined);
    this.onInternalError(err, { method, path });
    return errorResponse(new BorealisError(ErrorCodes.INTERNAL, 'internal error'));
  }

  tooLarge(): BorealisError {
    return new BorealisError(ErrorCodes.PAYLOAD_TOO_LARGE, `request body exceeds the limit of ${this.bodyLimit} bytes`);
  }

  /**
   * Checks an upgrade in the order the interface promises: endpoint, server state, subprotocol, then the
   * endpoint's `accept()`. Returns the selected subprotocol (the server's first choice among those offered),
   * or the refusal to send before any handshake.
   */
  checkUpgrade(
    route: WsRoute | undefined,
    closing: boolean,
    req: WsUpgradeRequest,
  ): { protocol: string; refusal?: undefined } | { protocol?: undefined; refusal: UpgradeRefusal } {
    if (!route) return { refusal: refusal(404, ErrorCodes.NOT_FOUND, `no WebSocket endpoint at ${req.path}`) };
    if (closing) return { refusal: refusal(503, ErrorCodes.CLOSED, 'server closing') };
    const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
    const protocol = route.protocols.find((p) => offered.includes(p));
    if (protocol === undefined) {
      const message = `subprotocol must be one of ${route.protocols.join(', ')} (offered: ${offered.length > 0 ? offered.join(', ') : 'none'})`;
      return { refusal: refusal(400, ErrorCodes.PROTOCOL, message) };
    }
    if (route.accept) {
      try {
        route.accept(req);
      } catch (err) {
        if (!isBorealisError(err)) this.onInternalError(err, { method: 'GET', path: req.path });
        const e = isBorealisError(err) ? err : new BorealisError(ErrorCodes.INTERNAL, 'internal error');
        return { refusal: refusal(e.httpStatus, e.code, e.message) };
      }
    }
    return { protocol };
  }
}

const CLOSE: Record<string, string> = { Connection: 'close' };

function errorResponse(e: BorealisError, headers?: Record<string, string>): HttpResponse {
  const json = e.toJSON() satisfies ErrorBody;
  return headers === undefined ? { status: e.httpStatus, json } : { status: e.httpStatus, json, headers };
}

/** The status and `{code, message}` body of a refused handshake (problems are not part of a refusal). */
export function refusal(status: number, code: BorealisError['code'], message: string): UpgradeRefusal {
  return { status, body: JSON.stringify({ code, message }) };
}

/** The body and Content-Type a response is sent with. */
export function renderBody(r: HttpResponse): { body: string; contentType: string } {
  return 'json' in r ? { body: JSON.stringify(r.json), contentType: JSON_TYPE } : { body: r.text, contentType: r.contentType };
}

export const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * A path WHATWG URL would give back unchanged: only unreserved and sub-delim characters, no percent-escapes (a
 * `%2e` segment is a dot segment to URL), no `.`/`..` segments, and not `//...` (an authority to URL). And a
 * query URL would not re-encode, not starting with `?` (which URLSearchParams would drop).
 */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;
const PLAIN_QUERY = /^(?!\?)[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;

/** Path and query of a request target, normalised the way WHATWG URL does (dot segments, percent-encoding). */
export function parseTarget(target: string): { path: string; query: URLSearchParams } {
  // Most targets are plain (`/v1/tasks?job=web`): those skip building a URL, with the same result.
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (PLAIN_PATH.test(path) && !DOT_SEGMENT.test(path)) {
    const query = q < 0 ? '' : target.slice(q + 1);
    if (PLAIN_QUERY.test(query)) return { path, query: new URLSearchParams(query) };
  }
  const url = new URL(target, 'http://localhost');
  return { path: url.pathname, query: url.searchParams };
}

/** The subprotocols a client offered (`Sec-WebSocket-Protocol: a, b`), in its order. */
export function offeredProtocols(header: string | undefined): string[] {
  if (header === undefined || header === '') return [];
  return header
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `host:port` as both servers report a peer (IPv6 bracketed). */
export function formatPeer(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
