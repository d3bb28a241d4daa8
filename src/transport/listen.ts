import { InvalidArgumentError } from '../api/errors.js';
import { DEFAULT_LISTEN, type ListenAddress } from './types.js';

/** The environment variable naming the master's listen address (`host:port`); a flag wins over it. */
export const LISTEN_ENV = 'BOREALIS_MASTER_LISTEN';

/** `host:port`, `[v6]:port` or `:port` (host defaults to 127.0.0.1: nothing is exposed unless asked). */
export function parseListen(text: string, what = 'listen'): ListenAddress {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new InvalidArgumentError(`${what} ${JSON.stringify(text)} must be host:port`, [{ path: what, message: 'must be host:port' }]);
  }
  const host = m[1] === '' ? DEFAULT_LISTEN.host : m[1].replace(/^\[|\]$/g, '');
  return { host, port };
}

/** The flag, else $BOREALIS_MASTER_LISTEN, else 127.0.0.1:5050. */
export function resolveListen(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ListenAddress {
  if (flag !== undefined) return parseListen(flag, '--listen');
  const fromEnv = env[LISTEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return parseListen(fromEnv, LISTEN_ENV);
  return { ...DEFAULT_LISTEN };
}

/** host:port for URLs (IPv6 bracketed). */
export function formatAddress(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
