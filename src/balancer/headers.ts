/**
 * Header hygiene, both directions.
 *
 * Requests: anything an endpoint could frame differently from us is refused before a byte is forwarded
 * (request smuggling needs two parsers to disagree; we make sure there is only one opinion): both Content-Length
 * and Transfer-Encoding, Content-Lengths that differ or are not digits, a Transfer-Encoding whose last coding is
 * not chunked, invalid header names or values, several Host headers (RFC 9112 §3.2: 400), too many or too large
 * headers (431). A transfer coding other than chunked (`gzip, chunked`) is refused with 501 (RFC 9112 §6.1): we
 * would have to decode it, and forwarding it as plain chunked would hand the endpoint gzip bytes as the body. A
 * target with a fragment or a malformed percent-encoding in its path is refused (400): routing and the endpoint
 * must read the same path (normalize-path.ts). `node:http`'s parser refuses most of these itself; front-node.ts
 * turns its refusals into the same responses. These checks are what holds for any front end (a more lenient
 * parser included).
 *
 * Forwarded requests carry one Content-Length (identical repeats are let in, RFC 9110 §8.6, and sent once; node's
 * parser refuses them instead), lose their hop-by-hop headers (RFC 9110 §7.6.1: Connection and every header it
 * names, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*) and Expect (the front end answers
 * 100-continue itself), and gain X-Forwarded-For (appended), X-Forwarded-Proto and X-Forwarded-Host (replaced:
 * a client must not choose what the endpoint believes about the connection), and Via (appended). Responses lose
 * their hop-by-hop headers too and gain Via.
 */
import { isPercentEncoding } from './normalize-path.js';
import type { RefusalKind, RequestLimits } from './types.js';
import { TCHAR, nameIs } from './tokens.js';

export const REQUEST_LIMIT_DEFAULTS: Readonly<RequestLimits> = {
  // Envoy's default max_headers_count; real browsers send 10-30.
  maxHeaders: 100,
  // Node's default maxHeaderSize (and nginx's large_client_header_buffers order of magnitude).
  maxHeaderBytes: 16 * 1024,
};

/** What we add to Via (RFC 9110 §7.6.3: protocol version and a pseudonym). */
export const VIA_VALUE = '1.1 borealis';

export interface Refusal {
  /** 501: a request transfer coding we do not implement (kind `unsupported_coding`). */
  status: 400 | 431 | 501;
  kind: RefusalKind;
  reason: string;
}

/** What checkRequest learns in its single pass, for the proxy. */
export interface RequestFacts {
  host: string | undefined;
  /** Content-Length > 0 or a Transfer-Encoding: there is a body to stream. */
  hasBody: boolean;
}

// Header classes, by lower-case name.
const H_HOP = 1;
const H_CONNECTION = 2;
const H_XFF = 3;
const H_XF_REPLACED = 4;
const H_VIA = 5;
const H_HOST = 6;
const H_CONTENT_LENGTH = 7;
const H_TRANSFER_ENCODING = 8;
const H_EXPECT = 9;
const CLASS = new Map<string, number>([
  ['connection', H_CONNECTION],
  ['keep-alive', H_HOP],
  ['te', H_HOP],
  ['trailer', H_HOP],
  ['upgrade', H_HOP],
  ['transfer-encoding', H_TRANSFER_ENCODING],
  ['x-forwarded-for', H_XFF],
  ['x-forwarded-proto', H_XF_REPLACED],
  ['x-forwarded-host', H_XF_REPLACED],
  ['via', H_VIA],
  ['host', H_HOST],
  ['content-length', H_CONTENT_LENGTH],
  ['expect', H_EXPECT],
]);

/** CLASS by name length: a name is compared (ignoring case) only with the few of its length. */
const BY_LENGTH: Array<Array<[string, number]>> = Array.from({ length: 32 }, () => []);
for (const [name, c] of CLASS) BY_LENGTH[name.length]!.push([name, c]);
const PROXY_PREFIX = 'proxy-';

/**
 * The class of a header name in any case, without lower-casing or hashing it (most names have none: a length
 * check and a compare or two). Proxy-Connection, Proxy-Authorization, Proxy-Authenticate...: meant for a proxy,
 * never for an endpoint.
 */
function classOf(name: string): number {
  if (name.length < BY_LENGTH.length) {
    const same = BY_LENGTH[name.length]!;
    for (let i = 0; i < same.length; i++) if (nameIs(name, same[i]![0])) return same[i]![1];
  }
  if (name.length <= 6) return 0;
  for (let i = 0; i < 6; i++) if ((name.charCodeAt(i) | 0x20) !== PROXY_PREFIX.charCodeAt(i)) return 0;
  return H_HOP;
}


export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** field-value: visible characters, space, tab and obs-text; no CR, LF, NUL or other controls. */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}

function isDigits(s: string): boolean {
  if (s.length === 0 || s.length > 15) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function refuse(kind: RefusalKind, status: Refusal['status'], reason: string): Refusal {
  return { status, kind, reason };
}

/**
 * Checks a request line and its headers (`[name, value, name, value, ...]` as received); null when it may be
 * forwarded, else why not. Fills `facts` on the way.
 */
export function checkRequest(method: string, target: string, raw: readonly string[], limits: RequestLimits, facts: RequestFacts): Refusal | null {
  if (!isToken(method)) return refuse('bad_request', 400, 'invalid method');
  // Origin-form only (a path): absolute-form is for forward proxies, and `*` (OPTIONS) has no service to go to.
  if (target.charCodeAt(0) !== 47 /* / */) return refuse('bad_request', 400, 'the request target must be a path starting with /');
  let inPath = true;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0xff) return refuse('bad_request', 400, 'invalid character in the request target');
    // A fragment is never sent (RFC 9112 §3.2): an endpoint that drops it would serve a path we did not route.
    if (c === 0x23 /* # */) return refuse('bad_request', 400, 'a fragment (#) in the request target');
    if (c === 0x3f /* ? */) inPath = false;
    // Only the path is normalised, so only its encodings must be well formed; a query is the endpoint's business.
    else if (c === 0x25 /* % */ && inPath && !isPercentEncoding(target, i)) return refuse('bad_request', 400, 'a malformed percent-encoding in the path');
  }
  const count = raw.length >> 1;
  if (count > limits.maxHeaders) return refuse('headers_too_large', 431, `more than ${limits.maxHeaders} header fields`);
  let bytes = method.length + target.length + 12;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let hosts = 0;
  facts.host = undefined;
  facts.hasBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    bytes += name.length + value.length + 4;
    if (!isToken(name)) return refuse('bad_request', 400, 'invalid header name');
    if (!isFieldValue(value)) return refuse('bad_request', 400, `invalid value in header ${name}`);
    const c = classOf(name);
    if (c === H_CONTENT_LENGTH) {
      const v = value.trim();
      if (!isDigits(v)) return refuse('bad_request', 400, 'Content-Length must be a number');
      if (contentLength !== undefined && contentLength !== v) return refuse('bad_request', 400, 'two different Content-Length values');
      contentLength = v;
    } else if (c === H_TRANSFER_ENCODING) {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    } else if (c === H_HOST) {
      hosts++;
      facts.host = value;
    }
  }
  if (bytes > limits.maxHeaderBytes) return refuse('headers_too_large', 431, `headers larger than ${limits.maxHeaderBytes} bytes`);
  if (hosts > 1) return refuse('bad_request', 400, 'more than one Host header');
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) return refuse('bad_request', 400, 'both Content-Length and Transfer-Encoding');
    if (transferEncoding !== 'chunked') {
      const r = checkCodings(transferEncoding);
      if (r !== null) return r;
    }
    facts.hasBody = true;
  } else if (contentLength !== undefined) {
    facts.hasBody = Number(contentLength) > 0;
  }
  return null;
}

/**
 * A Transfer-Encoding other than the plain `chunked` (the common case never gets here): null when it is still
 * chunked alone (`Chunked`, ` chunked`, empty list elements), else the refusal.
 */
function checkCodings(value: string): Refusal | null {
  const codings: string[] = [];
  // RFC 9110 §5.6.1: empty list elements are allowed and mean nothing.
  for (const part of value.toLowerCase().split(',')) {
    const c = part.trim();
    if (c !== '') codings.push(c);
  }
  // RFC 9112 §6.3: a request whose final coding is not chunked has no determinable length.
  if (codings.length === 0 || codings[codings.length - 1] !== 'chunked') return refuse('bad_request', 400, 'Transfer-Encoding must end with chunked');
  if (codings.length === 1) return null;
  // RFC 9112 §6.1: a sender must not apply chunked more than once.
  if (codings.indexOf('chunked') < codings.length - 1) return refuse('bad_request', 400, 'chunked applied more than once');
  // RFC 9112 §6.1: a transfer coding we do not decode is a 501; forwarded as chunked it would corrupt the body.
  return refuse('unsupported_coding', 501, `transfer coding ${codings[0]} is not supported: send the body with chunked alone`);
}

/**
 * Lower-case names listed by Connection headers other than the keep-alive/close options, or null (the common
 * case, which allocates nothing).
 */
function connectionTokens(raw: readonly string[]): string[] | null {
  let out: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i];
    if (n.length !== 10 || !nameIs(n, 'connection')) continue;
    const v = raw[i + 1].toLowerCase();
    if (v === 'keep-alive' || v === 'close' || v === 'upgrade') continue;
    for (const t of v.split(',')) {
      const token = t.trim();
      if (token !== '' && token !== 'keep-alive' && token !== 'close') (out ??= []).push(token);
    }
  }
  return out;
}

/**
 * The headers to send upstream (`out`, cleared first), from the client's: hop-by-hop ones dropped, the
 * X-Forwarded-* and Via set. `clientIp` is the peer's address; `proto` the scheme the client used.
 */
export function forwardHeaders(raw: readonly string[], clientIp: string, proto: string, out: string[]): void {
  // Setting the length is a runtime call even when it changes nothing; a fresh array is the common case.
  if (out.length !== 0) out.length = 0;
  const named = connectionTokens(raw);
  let xff: string | undefined;
  let via: string | undefined;
  let host: string | undefined;
  let length = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const c = classOf(name);
    if (c === 0 || c === H_HOST || c === H_CONTENT_LENGTH) {
      if (named !== null && named.includes(name.toLowerCase())) continue;
      if (c === H_HOST) host = raw[i + 1];
      else if (c === H_CONTENT_LENGTH) {
        // checkRequest let only identical repeats through: one is the length, two make endpoints answer 400.
        if (length) continue;
        length = true;
      }
      out.push(name, raw[i + 1]);
    } else if (c === H_XFF) {
      xff = xff === undefined ? raw[i + 1] : `${xff}, ${raw[i + 1]}`;
    } else if (c === H_VIA) {
      via = via === undefined ? raw[i + 1] : `${via}, ${raw[i + 1]}`;
    }
    // Hop-by-hop, Expect, Transfer-Encoding (the proxy re-frames the body) and X-Forwarded-Proto/Host are dropped.
  }
  out.push('x-forwarded-for', xff === undefined ? clientIp : `${xff}, ${clientIp}`, 'x-forwarded-proto', proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  out.push('via', via === undefined ? VIA_VALUE : `${via}, ${VIA_VALUE}`);
}

/**
 * The headers to send the client (`out`, cleared first), from an endpoint's response headers (`[name, value, ...]`
 * as latin1 strings, as the upstream pool parses them): hop-by-hop ones dropped, Via appended. With `upgrade`,
 * Connection and Upgrade are kept (a 101 needs them).
 */
export function responseHeaders(raw: readonly string[], out: string[], upgrade = false): void {
  if (out.length !== 0) out.length = 0;
  const named = connectionTokens(raw);
  let via: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const c = classOf(name);
    if (c === H_VIA) {
      via = via === undefined ? raw[i + 1] : `${via}, ${raw[i + 1]}`;
      continue;
    }
    if (c === H_HOP || c === H_CONNECTION || c === H_TRANSFER_ENCODING) {
      if (!upgrade) continue;
      const lower = name.toLowerCase();
      if (lower !== 'upgrade' && lower !== 'connection') continue;
    } else if (named !== null && named.includes(name.toLowerCase())) {
      continue;
    }
    out.push(name, raw[i + 1]);
  }
  out.push('via', via === undefined ? VIA_VALUE : `${via}, ${VIA_VALUE}`);
}
