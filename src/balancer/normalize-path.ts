/**
 * Request path normalisation, so that routing and the endpoint agree on what a path is.
 *
 * Routing compares path prefixes; endpoints (and their frameworks) resolve `.`/`..` segments, decode `%61` to `a`
 * and often merge `//`. Without normalisation `/a/../api/x` or `/%61pi/x` is routed by its literal text (to the
 * `/` service) and then served by that endpoint as `/api/x`: a prefix-routing bypass. As Envoy's `normalize_path`
 * plus `merge_slashes` do, the path is put in RFC 3986 §6.2.2 normal form, and that form is both routed and
 * forwarded:
 * 1. percent-encodings of unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`) are decoded, the others have
 *    their hex digits upper-cased (`%2f` → `%2F`); an encoded slash stays encoded, so it never splits a segment;
 * 2. dot segments are removed (RFC 3986 §5.2.4); `..` at the root stays at the root (`/../x` → `/x`);
 * 3. runs of slashes become one.
 * The query is left exactly as received: its meaning is the endpoint's alone.
 *
 * The common path (no `%`, no `//`, no `.` or `..` segment) is one scan that returns its argument: nothing is
 * allocated. Only the other paths are rebuilt.
 */

const PERCENT = 37; // %
const SLASH = 47; // /
const DOT = 46; // .
const QUESTION = 63; // ?

/** RFC 3986 §2.3 unreserved characters: their percent-encoding means the same as the character. */
const UNRESERVED = new Uint8Array(128);
for (let c = 48; c <= 57; c++) UNRESERVED[c] = 1;
for (let c = 65; c <= 90; c++) UNRESERVED[c] = 1;
for (let c = 97; c <= 122; c++) UNRESERVED[c] = 1;
for (const c of '-._~') UNRESERVED[c.charCodeAt(0)] = 1;

/** A hex digit's value, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** Whether a `%` at `i` starts a well-formed percent-encoding (two hex digits). */
export function isPercentEncoding(s: string, i: number): boolean {
  return i + 2 < s.length && hexValue(s.charCodeAt(i + 1)) >= 0 && hexValue(s.charCodeAt(i + 2)) >= 0;
}

/**
 * Whether the segment starting at `i` (just after a slash, with a `.`) is `.` or `..`: the segment ends at `end`,
 * a `/` or a `?`.
 */
function isDotSegment(s: string, i: number, end: number): boolean {
  let j = i + 1;
  if (j < end && s.charCodeAt(j) === DOT) j++;
  if (j === end) return true;
  const c = s.charCodeAt(j);
  return c === SLASH || c === QUESTION;
}

/**
 * The request target (origin-form: a path starting with `/`, then maybe `?query`) with its path in normal form;
 * the very same string when it already is. A malformed percent-encoding (checkRequest refuses those in the path)
 * is left as it is.
 */
export function normaliseTarget(target: string): string {
  // `*` and absolute-form have no path to normalise (checkRequest refuses both before this is called).
  if (target.charCodeAt(0) !== SLASH) return target;
  const n = target.length;
  for (let i = 0; i < n; i++) {
    const c = target.charCodeAt(i);
    if (c === QUESTION) return target;
    if (c === PERCENT || (c === SLASH && needsWork(target, i + 1, n))) return rebuild(target, queryStart(target, i));
  }
  return target;
}

/**
 * Whether what follows a slash (from `i`) makes the path not normal: another slash, or a `.` or `..` segment. A
 * `%` is caught by the scan itself.
 */
function needsWork(s: string, i: number, n: number): boolean {
  if (i >= n) return false;
  const c = s.charCodeAt(i);
  return c === SLASH || (c === DOT && isDotSegment(s, i, n));
}

function queryStart(target: string, from: number): number {
  const q = target.indexOf('?', from);
  return q < 0 ? target.length : q;
}

/** The slow path: decodes, removes dot segments, merges slashes; the query (from `end`) is appended unchanged. */
function rebuild(target: string, end: number): string {
  const path = decodeUnreserved(target, end);
  // RFC 3986 §5.2.4 over segments: empty segments take part (`/a//../x` is `/a/x`, as Envoy has it) and are merged
  // after, so the result has no empty segment but a trailing one (the trailing slash, which endpoints may route on).
  const out: string[] = [];
  let start = 1;
  for (;;) {
    let slash = path.indexOf('/', start);
    const last = slash < 0;
    if (last) slash = path.length;
    const seg = path.slice(start, slash);
    if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else if (seg === '.') {
      if (last) out.push('');
    } else {
      out.push(seg);
    }
    if (last) break;
    start = slash + 1;
  }
  let result = '';
  for (let i = 0; i < out.length; i++) {
    // An empty segment only survives as the last one: a trailing slash.
    if (out[i] === '' && i < out.length - 1) continue;
    result += `/${out[i]}`;
  }
  if (result === '') result = '/';
  return end === target.length ? result : result + target.slice(end);
}

/** The path (`target` up to `end`) with unreserved characters decoded and other percent-encodings upper-cased. */
function decodeUnreserved(target: string, end: number): string {
  let out = '';
  let from = 0;
  for (let i = target.indexOf('%'); i >= 0 && i < end; i = target.indexOf('%', i + 1)) {
    if (i + 2 >= end) break;
    const hi = hexValue(target.charCodeAt(i + 1));
    const lo = hexValue(target.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) continue;
    const byte = (hi << 4) | lo;
    out += target.slice(from, i);
    out += byte < 128 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : `%${target[i + 1]}${target[i + 2]}`.toUpperCase();
    from = i + 3;
    i += 2;
  }
  return out + target.slice(from, end);
}
