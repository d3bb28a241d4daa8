/**
 * The CLI's client for the master's HTTP API (undici). Errors come back as CliErrors with the exit code they
 * mean: 404 -> NOT_FOUND, other error responses -> SERVER_ERROR, no connection -> UNREACHABLE.
 */
import { request } from 'undici';
import { formatAddress, parseListen } from '../transport/listen.js';
import { DEFAULT_BODY_LIMIT_BYTES } from '../transport/types.js';
import { CliError, ExitCode } from './exit.js';

/** The environment variable naming the master the CLI talks to; `--master` wins over it. */
export const MASTER_ENV = 'BOREALIS_MASTER';
export const DEFAULT_MASTER = '127.0.0.1:5050';
/** A master on one machine or a LAN answers a connect in well under a second; 5 s means it is not there. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Submits wait for the journal's fsync; 30 s is far past any healthy commit. */
const RESPONSE_TIMEOUT_MS = 30_000;
/** How a connection cut during the upload shows in undici. */
const CUT_OFF = new Set(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET']);

export function resolveMaster(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const text = flag ?? (env[MASTER_ENV] || DEFAULT_MASTER);
  try {
    const a = parseListen(text, flag !== undefined ? '--master' : env[MASTER_ENV] ? MASTER_ENV : 'master');
    return formatAddress(a);
  } catch (err) {
    throw new CliError(ExitCode.USAGE, (err as Error).message);
  }
}

export class ApiClient {
  readonly base: string;

  constructor(master: string) {
    this.base = `http://${master}`;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: { text: string; contentType: string }): Promise<T> {
    let res;
    try {
      res = await request(`${this.base}${path}`, {
        method,
        headers: body ? { 'content-type': body.contentType } : {},
        body: body?.text,
        headersTimeout: RESPONSE_TIMEOUT_MS,
        bodyTimeout: RESPONSE_TIMEOUT_MS,
        signal: AbortSignal.timeout(RESPONSE_TIMEOUT_MS + CONNECT_TIMEOUT_MS),
      });
    } catch (err) {
      const e = err as { code?: string; message?: string; cause?: { code?: string } };
      const code = e.code ?? e.cause?.code ?? 'error';
      const bytes = body ? Buffer.byteLength(body.text) : 0;
      if (bytes > DEFAULT_BODY_LIMIT_BYTES && CUT_OFF.has(code)) {
        // It answered the connect, then cut a large upload short: most likely what a server does to a body over its
        // limit (its 413 can be lost with the connection). Not "unreachable": retrying will not help, a smaller file
        // will. (A master configured with a higher limit that crashed mid-upload would read the same; rare.)
        throw new CliError(
          ExitCode.SERVER_ERROR,
          `the master at ${this.base} closed the connection while a ${bytes}-byte request was being sent: ` +
            `probably over its body limit (${DEFAULT_BODY_LIMIT_BYTES} bytes unless configured otherwise)`,
          [],
          'BRL_ERR_PAYLOAD_TOO_LARGE',
        );
      }
      throw new CliError(ExitCode.UNREACHABLE, `cannot reach the master at ${this.base} (${code}: ${e.message ?? String(err)})`);
    }
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) return parseJson(text) as T;
    const e = errorResponse(res.statusCode, text);
    throw new CliError(res.statusCode === 404 ? ExitCode.NOT_FOUND : ExitCode.SERVER_ERROR, e.message, e.problems, e.code);
  }
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

/**
 * The master's error body (`{code, message, problems?}`, src/api/errors.ts) as one line, `CODE: message`; a
 * body that is not one (a proxy's page) shows as `HTTP status: text`.
 */
export function errorResponse(status: number, text: string): { message: string; problems: { path: string; message: string }[]; code?: string } {
  const e = (parseJson(text) ?? {}) as { code?: string; message?: string; problems?: { path: string; message: string }[] };
  return { message: `${e.code ?? `HTTP ${status}`}: ${e.message ?? text.trim()}`, problems: e.problems ?? [], code: e.code };
}
