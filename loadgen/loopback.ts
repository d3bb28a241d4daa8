import { isIPv4 } from 'node:net';

/**
 * Whether a URL's hostname names this machine's loopback: load goes only there unless the caller explicitly allows
 * another target. The WHATWG URL parser has already normalised the name (lower case, `127.1` → `127.0.0.1`,
 * IPv6 in brackets), so exact comparisons are enough.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}
