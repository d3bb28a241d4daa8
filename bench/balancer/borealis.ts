/**
 * Borealis's balancer as a benchmark target: `borealis balancer --static HOST:PORT@W,... --listen
 * HOST:PORT`, a fixed endpoint list and no master, started as its own process exactly as a user
 * would (the compiled CLI when the harness is compiled, through tsx in tests).
 */
import { HOST, waitForPort } from './net.js';
import type { Upstream } from './nginx.js';
import type { ManagedProcess, Supervisor } from './processes.js';
import { REPO_ROOT, fileExists, nodeModuleArgs } from './programs.js';

const CLI = 'src/cli/main';
/** Start-up through tsx compiles the CLI first; generous so a loaded 2-core machine does not fail the run. */
const START_TIMEOUT_MS = 30_000;
/** How long to wait, once listening, for the log line that names the transport. */
const TRANSPORT_LINE_MS = 1500;

export interface BorealisSupport {
  /** Why it cannot run, or null. */
  missing: string | null;
  /** The balancer accepts `--threads N`. */
  threads: boolean;
}

/** Asks the CLI itself (`balancer --help`) whether `--static` (and `--threads`) exist yet. */
export async function borealisSupport(sup: Supervisor, cli: readonly string[] = nodeModuleArgs(CLI)): Promise<BorealisSupport> {
  const file = cli[cli.length - 1]!;
  if (!fileExists(file)) return { missing: `${file} not found (run \`npm run build\`)`, threads: false };
  const p = sup.start('borealis --help', process.execPath, [...cli, 'balancer', '--help'], { cwd: REPO_ROOT, quiet: true });
  const exit = await p.exited;
  if (exit.code !== 0 || !p.output.includes('--static')) {
    return { missing: '`borealis balancer --static` is not available in this build', threads: false };
  }
  return { missing: null, threads: /--threads\b/.test(p.output) };
}

function staticList(upstreams: readonly Upstream[]): string {
  return upstreams.map((u) => `${HOST}:${u.port}@${u.weight}`).join(',');
}

/** What the balancer's start-up log line says it runs on; 'unknown' when it says neither. */
function transportFromLog(out: string): string {
  // The structured field is exact; a free-text line may mention the other transport ("uWebSockets.js did not load").
  const field = /transport=(uWebSockets\.js|node:http)/.exec(out);
  if (field) return field[1]!;
  if (/uWebSockets|\buws\b/i.test(out)) return 'uWebSockets.js';
  if (/node:http|native-free/i.test(out)) return 'node:http';
  return 'unknown';
}

export interface StartBorealis {
  name: string;
  port: number;
  upstreams: readonly Upstream[];
  /** false: force the native-free path with BOREALIS_NATIVE=0; true: let it pick (uWebSockets.js when it loads). */
  native: boolean;
  threads?: number | undefined;
  cpus: string | undefined;
  cli?: readonly string[];
}

export async function startBorealis(sup: Supervisor, o: StartBorealis): Promise<{ proc: ManagedProcess; transport: string }> {
  const env = { ...process.env };
  if (o.native) delete env['BOREALIS_NATIVE'];
  else env['BOREALIS_NATIVE'] = '0';
  const args = [...(o.cli ?? nodeModuleArgs(CLI)), 'balancer', '--static', staticList(o.upstreams), '--listen', `${HOST}:${o.port}`];
  if (o.threads !== undefined) args.push('--threads', String(o.threads));
  const proc = sup.start(o.name, process.execPath, args, { cpus: o.cpus, env, cwd: REPO_ROOT, stdinPipe: true });
  const exitedWhy = (): string | null => (proc.exitStatus ? `${o.name} exited (${proc.exitStatus.code ?? proc.exitStatus.signal}): ${proc.output.slice(-2000)}` : null);
  await waitForPort(o.port, START_TIMEOUT_MS, exitedWhy);
  let transport = transportFromLog(proc.output);
  if (transport === 'unknown') {
    transport = await proc.waitForOutput(/uWebSockets|\buws\b|node:http|native-free/i, TRANSPORT_LINE_MS).then(
      () => transportFromLog(proc.output),
      () => 'unknown',
    );
  }
  return { proc, transport };
}
