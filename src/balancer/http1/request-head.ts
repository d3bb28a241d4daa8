/**
 * The request head as one latin1 string (one write, no Buffer: the socket writes a string straight from its
 * characters), and the chunked framing of a body without a Content-Length.
 */
import { nameIs } from '../tokens.js';

/** How the request's body is framed on the wire. */
export const BodyFraming = {
  NONE: 0,
  /** As is: the head carries the client's Content-Length. */
  LENGTH: 1,
  /** chunked: the client sent none (it sent chunked, which headers.ts dropped as hop-by-hop). */
  CHUNKED: 2,
} as const;

/**
 * The head for `method path` with `headers` (`[name, value, ...]`, already checked by headers.ts: tokens and
 * field values only), `host` added when the client sent none (HTTP/1.1 requires one), Transfer-Encoding when
 * `hasBody` without a Content-Length, and `upgrade` as Connection/Upgrade. Sets `out.framing`.
 */
export function requestHead(
  method: string,
  path: string,
  headers: readonly string[],
  hasBody: boolean,
  upgrade: string | null,
  hostFallback: string,
  out: { framing: number },
): string {
  let s = `${method} ${path} HTTP/1.1\r\n`;
  let host = false;
  let length = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (name.length === 4 && nameIs(name, 'host')) host = true;
    else if (name.length === 14 && nameIs(name, 'content-length')) length = true;
    s += `${name}: ${headers[i + 1]}\r\n`;
  }
  if (!host) s += `host: ${hostFallback}\r\n`;
  if (upgrade !== null) s += `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
  if (!hasBody) out.framing = BodyFraming.NONE;
  else if (length) out.framing = BodyFraming.LENGTH;
  else {
    out.framing = BodyFraming.CHUNKED;
    s += 'transfer-encoding: chunked\r\n';
  }
  return `${s}\r\n`;
}

/** The size line before a chunk of `n` bytes (n > 0). */
export function chunkHeader(n: number): string {
  return `${n.toString(16)}\r\n`;
}

export const CHUNK_END = '\r\n';
/** The last chunk and an empty trailer section. */
export const LAST_CHUNK = '0\r\n\r\n';
