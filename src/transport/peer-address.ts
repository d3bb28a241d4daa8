/**
 * A peer's IP address as text, from the raw bytes uWebSockets.js gives (4 bytes for IPv4, 16 for IPv6), in the
 * form node's `socket.remoteAddress` uses, so both front ends write the same X-Forwarded-For: dotted IPv4,
 * RFC 5952 IPv6 (lower-case hex, no leading zeros, the longest run of two or more zero groups as `::`), and an
 * IPv4-mapped address as `::ffff:a.b.c.d`. (uWS' own text form is eight full groups: `0000:…:0001`.)
 *
 * uWS asks the kernel for the address on every call (its API has no per-connection state to keep it in), so the
 * balancer calls it once per request; what this saves is the decoding: consecutive requests mostly come from the
 * same peer, and comparing up to 16 bytes with the last address costs less than formatting it again.
 */

/** The text of `b` (4 or 16 bytes); '' for any other length (uWS gives an empty buffer for a closed socket). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return '';
  let mapped = b[10] === 0xff && b[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = b[i] === 0;
  if (mapped) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  // The longest run of zero groups (the first of equal runs), if at least two long.
  let bestAt = -1;
  let bestLen = 1;
  for (let g = 0; g < 8; ) {
    if (b[2 * g] !== 0 || b[2 * g + 1] !== 0) {
      g++;
      continue;
    }
    const at = g;
    while (g < 8 && b[2 * g] === 0 && b[2 * g + 1] === 0) g++;
    if (g - at > bestLen) {
      bestAt = at;
      bestLen = g - at;
    }
  }
  let out = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestAt) {
      out += '::';
      g += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += ((b[2 * g] << 8) | b[2 * g + 1]).toString(16);
  }
  return out;
}

/** Formats peer addresses, remembering the last one. One per thread (it is not shared state anyone else sees). */
export class PeerAddressText {
  readonly #last = new Uint8Array(16);
  #lastLength = -1;
  #lastText = '';

  /** The text of the address in `ab` (as uWS' getRemoteAddress() returns it). */
  text(ab: ArrayBuffer): string {
    const b = new Uint8Array(ab);
    const n = b.length;
    const last = this.#last;
    if (n === this.#lastLength) {
      let i = 0;
      while (i < n && b[i] === last[i]) i++;
      if (i === n) return this.#lastText;
    }
    this.#lastText = formatIp(b);
    if (n <= 16) {
      last.set(b);
      this.#lastLength = n;
    }
    return this.#lastText;
  }
}
