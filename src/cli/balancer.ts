/**
 * `borealis balancer`: the L7 load balancer on its own, until SIGINT/SIGTERM.
 * - `--master host:port` (default: $BOREALIS_MASTER, else 127.0.0.1:5050): fed by that master's event stream;
 *   several balancers can front one cluster.
 * - `--static 127.0.0.1:8001@1,127.0.0.1:8002@2`: a fixed endpoint list with weights, no master (benchmarks, or
 *   anything not scheduled by Borealis).
 */
import { BALANCER_LISTEN_ENV, Balancer, DEFAULT_BALANCER_LISTEN, parseStaticEndpoints } from '../balancer/index.js';
import type { BalancerLogger } from '../balancer/index.js';
import { formatAddress, parseListen } from '../transport/listen.js';
import { resolveMaster } from './client.js';
import { CliError, ExitCode, usage } from './exit.js';

export interface BalancerFlags {
  master?: string;
  listen?: string;
  static?: string;
  verbose?: boolean;
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
  // TODO(uWS front end): choose the front end with loadNative() from src/transport/native.ts (uWebSockets.js when
  // its native binary loads, BOREALIS_NATIVE=0 forces this one) and pass it as `frontEnd`; node:http until then.
  const balancer = new Balancer({ feed, listen, logger: lineLogger('borealis balancer', flags.verbose ?? false) });
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
