/**
 * The `borealis-loadgen` command: flags → LoadOptions → runLoad → a table (or one JSON object with --json) on stdout.
 * Exit codes: 0 the run completed (failed requests are data in the report, not a failed command), 1 an unexpected
 * failure, 2 a usage error (bad flag or value, unreadable --body-file, a non-loopback URL without --allow-remote):
 * nothing was sent. The first SIGINT ends the window early and still reports; a second one exits at once (130).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { InvalidArgumentError } from '../src/api/errors.js';
import { parseDuration } from './duration.js';
import { LOAD_DEFAULTS, type LoadOptions } from './options.js';
import { formatReport } from './report.js';
import { runLoad } from './run.js';

export const LoadgenExit = { OK: 0, FAILED: 1, USAGE: 2, INTERRUPTED: 130 } as const;

export interface LoadgenIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: LoadgenIo = {
  out: (t) => void process.stdout.write(`${t}\n`),
  err: (t) => void process.stderr.write(`${t}\n`),
};

interface Flags {
  url: string;
  rate?: string;
  mode?: 'open' | 'closed';
  duration: string;
  warmup: string;
  connections: string;
  pipelining: string;
  maxInFlight?: string;
  method?: string;
  header: string[];
  body?: string;
  bodyFile?: string;
  timeout: string;
  allowRemote?: boolean;
  json?: boolean;
}

/** Library option names as the flags a user typed, for messages. */
const FLAG_OF: Readonly<Record<string, string>> = {
  url: '--url',
  mode: '--mode',
  rate: '--rate',
  durationMs: '--duration',
  warmupMs: '--warmup',
  timeoutMs: '--timeout',
  connections: '--connections',
  pipelining: '--pipelining',
  maxInFlight: '--max-in-flight',
  method: '--method',
  headers: '--header',
};

class UsageError extends Error {}

function buildProgram(io: LoadgenIo): Command {
  return new Command('borealis-loadgen')
    .description(
      'HTTP load at a constant rate (open loop: latency from each request\'s intended send time, so a stall is never ' +
        'hidden) or as fast as responses return (closed loop, like wrk). Loopback targets only unless --allow-remote.',
    )
    .requiredOption('--url <url>', 'target, http:// on 127.0.0.0/8, localhost or [::1]')
    .option('--rate <req/s>', 'requests per second (open loop)')
    .addOption(new Option('--mode <mode>', 'open (default with --rate) or closed (default without)').choices(['open', 'closed']))
    .option('--duration <time>', 'measured window: 500ms, 10s, 2m', '10s')
    .option('--warmup <time>', 'load sent first and left out of every number', '0s')
    .option('--connections <n>', 'keep-alive connections', String(LOAD_DEFAULTS.connections))
    .option('--pipelining <n>', 'requests outstanding per connection', String(LOAD_DEFAULTS.pipelining))
    .option('--max-in-flight <n>', 'open loop: outstanding requests at most; due requests beyond it wait, timed from their intended send (default connections × pipelining)')
    .option('--method <method>', 'request method (default GET, or POST with a body)')
    .option('--header <name:value>', 'request header (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--body <text>', 'request body')
    .option('--body-file <path>', 'request body from a file')
    .option('--timeout <time>', 'connect, headers and body-idle timeout; also the longest drain at the end', '5s')
    .option('--allow-remote', 'allow a target that is not this machine\'s loopback')
    .option('--json', 'print exactly one JSON object (the report) instead of the table')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => io.err(s.trimEnd()) });
}

function number(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: not a number: ${JSON.stringify(text)}`);
  return n;
}

function duration(flag: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`${flag}: not a duration (e.g. 500ms, 10s, 2m): ${JSON.stringify(text)}`);
  return ms;
}

function toOptions(f: Flags): LoadOptions {
  if (f.body !== undefined && f.bodyFile !== undefined) throw new UsageError('--body and --body-file: give one or the other');
  let body: string | Buffer | undefined = f.body;
  if (f.bodyFile !== undefined) {
    try {
      body = readFileSync(f.bodyFile);
    } catch (err) {
      throw new UsageError(`--body-file: cannot read ${f.bodyFile}: ${(err as Error).message}`);
    }
  }
  const headers = f.header.map((h): [string, string] => {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header: expected name:value, got ${JSON.stringify(h)}`);
    return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
  });
  return {
    url: f.url,
    mode: f.mode,
    rate: f.rate === undefined ? undefined : number('--rate', f.rate),
    durationMs: duration('--duration', f.duration),
    warmupMs: duration('--warmup', f.warmup),
    timeoutMs: duration('--timeout', f.timeout),
    connections: number('--connections', f.connections),
    pipelining: number('--pipelining', f.pipelining),
    maxInFlight: f.maxInFlight === undefined ? undefined : number('--max-in-flight', f.maxInFlight),
    method: f.method,
    headers,
    body,
    allowRemote: f.allowRemote === true,
  };
}

/** Runs the command; resolves with the exit code (never calls process.exit itself). */
export async function runLoadgenCli(argv: readonly string[], io: LoadgenIo = defaultIo): Promise<number> {
  const program = buildProgram(io);
  let flags: Flags;
  try {
    program.parse([...argv]);
    flags = program.opts<Flags>();
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? LoadgenExit.OK : LoadgenExit.USAGE;
    throw err;
  }

  let options: LoadOptions;
  try {
    options = toOptions(flags);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`borealis-loadgen: ${err.message}`);
    return LoadgenExit.USAGE;
  }

  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    if (++interrupts > 1) process.exit(LoadgenExit.INTERRUPTED);
    io.err('borealis-loadgen: interrupted; draining outstanding requests (Ctrl-C again to quit now)');
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const report = await runLoad({ ...options, signal: abort.signal });
    io.out(flags.json ? JSON.stringify(report) : formatReport(report));
    // The report is out either way; a run in which nothing answered at all (refused, reset, timed out) is a
    // failed run for a script, not a measurement. Error statuses are answers: a 503 storm is a measurement.
    let answered = 0;
    for (const n of Object.values(report.statusCodes)) answered += n;
    if (report.requests > 0 && answered === 0) {
      const kinds = Object.entries(report.errors)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      io.err(`borealis-loadgen: no request got a response (${kinds})`);
      return LoadgenExit.FAILED;
    }
    return LoadgenExit.OK;
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      for (const p of err.problems) io.err(`borealis-loadgen: ${FLAG_OF[p.path] ?? p.path}: ${p.message}`);
      if (err.problems.length === 0) io.err(`borealis-loadgen: ${err.message}`);
      return LoadgenExit.USAGE;
    }
    io.err(`borealis-loadgen: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return LoadgenExit.FAILED;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
