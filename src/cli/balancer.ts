/**
 * `borealis balancer`: the L7 load balancer on its own, until SIGINT/SIGTERM.
 * - `--master host:port` (default: $BOREALIS_MASTER, else 127.0.0.1:5050): fed by that master's event stream;
 *   several balancers can front one cluster.
 * - `--static 127.0.0.1:8001@1,127.0.0.1:8002@2`: a fixed endpoint list with weights, no master (benchmarks, or
 *   anything not scheduled by Borealis).
 * - `--threads N` (default 1): N proxy threads sharing the port; needs uWebSockets.js (threads.ts says why).
 * It runs on uWebSockets.js when its native binary loads, else on node:http ($BOREALIS_NATIVE=0 forces node:http);
 * the start-up line says which, and why.
 */
import { BALANCER_LISTEN_ENV, Balancer, DEFAULT_BALANCER_LISTEN, parseStaticEndpoints } from '../balancer/index.js';
import type { BalancerLogger } from '../balancer/index.js';
import { chooseFrontEnd } from '../balancer/front-choice.js';
import { MAX_THREADS, ThreadedBalancer } from '../balancer/threads.js';
import { isBorealisError } from '../api/errors.js';
import { formatAddress, parseListen } from '../transport/listen.js';
import { resolveMaster } from './client.js';
import { CliError, ExitCode, usage } from './exit.js';

export interface BalancerFlags {
  master?: string;
  listen?: string;
  static?: string;
  verbose?: boolean;
  threads?: string;
}

/** `--threads`: a whole number of proxy threads, 1 by default. */
export function parseThreads(flag: string | undefined): number {
  if (flag === undefined) return 1;
  const n = Number(flag);
  if (!/^\d+$/.test(flag.trim()) || n < 1 || n > MAX_THREADS) throw usage(`--threads must be a whole number in 1..${MAX_THREADS}, got ${flag}`);
  return n;
}

/** The flag, else $BOREALIS_BALANCER_LISTEN, else 127.0.0.1:8080. */
export function resolveBalancerListen(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, what = '--listen'): { host: string; port: number } {
  try {
    if (flag !== undefined) return parseListen(flag, what);
    const fromEnv = env[BALANCER_LISTEN_ENV];
    if (fromEnv !== undefined && fromEnv !== '') return parseListen(fromEnv, BALANCER_LISTEN_ENV);
    return { ...DEFAULT_BALANCER_LISTEN };
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** One line per message on stderr (the start-up line, endpoint changes, ejections); debug only with --verbose. */
export function lineLogger(prefix: string, verbose: boolean): BalancerLogger {
  const line = (level: string) => (obj: object, msg?: string) => {
    const fields = Object.entries(obj)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    process.stderr.write(`${prefix}: ${level === 'info' ? '' : `${level}: `}${msg ?? ''}${fields ? ` (${fields})` : ''}\n`);
  };
  return { debug: verbose ? line('debug') : () => undefined, info: line('info'), warn: line('warn'), error: line('error') };
}

export async function balancerCommand(flags: BalancerFlags): Promise<number> {
  if (flags.static !== undefined && flags.master !== undefined) throw usage('--static and --master exclude each other');
  const listen = resolveBalancerListen(flags.listen);
  let feed: { static: ReturnType<typeof parseStaticEndpoints> } | { remote: string };
  if (flags.static !== undefined) {
    try {
      feed = { static: parseStaticEndpoints(flags.static) };
    } catch (err) {
      throw usage(`--static: ${(err as Error).message}`);
    }
  } else {
    feed = { remote: resolveMaster(flags.master) };
  }
  const threads = parseThreads(flags.threads);
  const logger = lineLogger('borealis balancer', flags.verbose ?? false);
  let balancer: Balancer | ThreadedBalancer;
  try {
    if (threads > 1) {
      const choice = chooseFrontEnd();
      if (choice.kind !== 'uws') {
        throw usage(
          `--threads ${threads} needs uWebSockets.js, which is not in use here (${choice.why}): node:http cannot share one port ` +
            'between threads; run one balancer per core on different ports, or leave out --threads',
        );
      }
      balancer = new ThreadedBalancer({ threads, feed, listen, logger });
    } else {
      balancer = new Balancer({ feed, listen, logger });
    }
  } catch (err) {
    // $BOREALIS_NATIVE=1 without a loadable binary, or a bad $BOREALIS_NATIVE.
    if (isBorealisError(err)) throw new CliError(ExitCode.USAGE, err.message);
    throw err;
  }
  try {
    await balancer.start();
  } catch (err) {
    await balancer.close();
    const e = err as NodeJS.ErrnoException;
    throw new CliError(ExitCode.SERVER_ERROR, `cannot listen on ${formatAddress(listen)}: ${e.code ?? e.message}`);
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`borealis balancer: ${signal}, finishing in-flight requests and stopping\n`);
      balancer.close().then(resolve, (err: unknown) => {
        process.stderr.write(`borealis balancer: close failed: ${String(err)}\n`);
        resolve();
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
  return ExitCode.OK;
}
