/**
 * `borealis`: the command line. Client commands talk to the master's HTTP API (`--master`, $BOREALIS_MASTER,
 * default 127.0.0.1:5050); `up` and `agent` run a master or an agent in this process.
 * Exit codes (exit.ts): 0 ok, 1 server-side error, 2 usage error, 3 cannot reach the master, 4 not found.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { agentCommand } from './agent.js';
import { type BalancerFlags, balancerCommand } from './balancer.js';
import { MASTER_ENV } from './client.js';
import {
  type ClientFlags,
  agentsCommand,
  drainCommand,
  undrainCommand,
  jobsCommand,
  killCommand,
  runCommand,
  scaleCommand,
  statusCommand,
  tasksCommand,
} from './commands.js';
import { type EventsFlags, eventsCommand } from './events.js';
import { CliError, ExitCode } from './exit.js';
import { upCommand } from './up.js';
import { LISTEN_ENV } from '../transport/listen.js';
import { isBorealisError } from '../api/errors.js';

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: Io = {
  out: (t) => void process.stdout.write(`${t}\n`),
  err: (t) => void process.stderr.write(`${t}\n`),
};

function clientOptions(cmd: Command): Command {
  return cmd
    .option('--master <host:port>', `the master's API address (env ${MASTER_ENV}, default 127.0.0.1:5050)`)
    .option('--json', 'print JSON (the API response) instead of a table');
}

export function buildProgram(io: Io = defaultIo, setExit: (code: number) => void = () => undefined): Command {
  const program = new Command('borealis')
    .description('Borealis: a cluster scheduler (Mesos/Aurora lineage)')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  const flags = (cmd: Command): ClientFlags => cmd.opts<ClientFlags>();

  program
    .command('up')
    .description('start a master, three local agents and the demo service on this machine (Ctrl-C stops them)')
    .option('--listen <host:port>', `where the master listens (env ${LISTEN_ENV}, default 127.0.0.1:5050)`)
    .option('--balancer-listen <host:port>', 'where the load balancer listens (env BOREALIS_BALANCER_LISTEN, default 127.0.0.1:8080)')
    .option('--data-dir <dir>', 'the master journal and the agents\' work dirs', './.borealis')
    .option('--no-demo', 'do not submit the demo service')
    .option('--agents <n>', 'local agents to start', '3')
    .action(async (o: { listen?: string; balancerListen?: string; dataDir: string; demo: boolean; agents: string }) => setExit(await upCommand(o)));

  program
    .command('agent')
    .description('run an agent on this machine until SIGINT/SIGTERM (then its tasks are killed)')
    .option('--master <host:port>', `the master (env ${MASTER_ENV}, default 127.0.0.1:5050)`)
    .requiredOption('--resources <list>', 'what this agent offers, e.g. cpus=4,mem=8Gi,disk=20Gi,gpus=0')
    .option('--ports <ranges>', 'task port ranges, e.g. 31000-32000')
    .option('--attributes <list>', 'attributes for constraints, e.g. zone=a,rack=r1')
    .option('--advertise-ip <ip>', 'the address tasks are reachable at', '127.0.0.1')
    .option('--work-dir <dir>', 'agent id and task sandboxes', './.borealis/agent')
    .option('--hostname <name>', 'reported hostname (default: this machine\'s)')
    .option('--agent-id <id>', 'agent id (default: derived from the hostname and work dir, kept in the work dir)')
    .addOption(new Option('--isolation <kind>', 'task isolation').choices(['auto', 'rss-poll']))
    .action(async (o) => setExit(await agentCommand(o)));

  program
    .command('balancer')
    .description('run the L7 load balancer until SIGINT/SIGTERM, fed by a master\'s event stream or a static endpoint list')
    .option('--master <host:port>', `the master whose services to balance (env ${MASTER_ENV}, default 127.0.0.1:5050)`)
    .option('--static <endpoints>', 'a fixed endpoint list instead of a master, e.g. 127.0.0.1:8001@1,127.0.0.1:8002@2 (@weight)')
    .option('--listen <host:port>', 'where the balancer listens (env BOREALIS_BALANCER_LISTEN, default 127.0.0.1:8080)')
    .option('--threads <n>', 'proxy threads sharing the port (uWebSockets.js only), default 1')
    .option('--verbose', 'log feed and connection details')
    .action(async (o: BalancerFlags) => setExit(await balancerCommand(o)));

  clientOptions(program.command('run').argument('<file>', 'job spec, .json or .yaml').description('submit a job from a JSON or YAML file'))
    .action(async (file: string, _o, cmd: Command) => runCommand(file, flags(cmd), io.out));
  clientOptions(program.command('jobs').description('list jobs')).action(async (_o, cmd: Command) => jobsCommand(flags(cmd), io.out));
  clientOptions(program.command('tasks').argument('[job]', 'only this job\'s tasks').description('list tasks'))
    .action(async (job: string | undefined, _o, cmd: Command) => tasksCommand(job, flags(cmd), io.out));
  clientOptions(program.command('agents').description('list agents')).action(async (_o, cmd: Command) => agentsCommand(flags(cmd), io.out));
  clientOptions(program.command('scale').argument('<job>').argument('<instances>', 'the new instance count').description('set a job\'s instance count'))
    .action(async (job: string, n: string, _o, cmd: Command) => scaleCommand(job, n, flags(cmd), io.out));
  clientOptions(program.command('kill').argument('<job>').description('kill a job (every task)'))
    .action(async (job: string, _o, cmd: Command) => killCommand(job, flags(cmd), io.out));
  clientOptions(program.command('drain').argument('<agent>', 'agent id').description('drain an agent: no new tasks, services move elsewhere'))
    .action(async (id: string, _o, cmd: Command) => drainCommand(id, flags(cmd), io.out));
  clientOptions(program.command('undrain').argument('<agent>', 'agent id').description('end an agent\'s drain: it takes new tasks again'))
    .action(async (id: string, _o, cmd: Command) => undrainCommand(id, flags(cmd), io.out));
  clientOptions(program.command('status').description('cluster totals: agents, jobs, tasks, resources'))
    .action(async (_o, cmd: Command) => statusCommand(flags(cmd), io.out));
  program
    .command('events')
    .description('tail the event stream (reconnects and resumes after the last event printed; Ctrl-C stops)')
    .option('--master <host:port>', `the master's API address (env ${MASTER_ENV}, default 127.0.0.1:5050)`)
    .option('--since <seq>', 'start after this seq (replayed from the master\'s log; a resync if it is gone)')
    .option('--job <names>', 'only events of these jobs (comma-separated)')
    .option('--agent <ids>', 'only events about these agents (comma-separated)')
    .option('--type <types>', 'only these event types (comma-separated, e.g. task_state,task_placed)')
    .option('--limit <n>', 'exit after n events')
    .option('--json', 'one JSON event per line instead of a human line')
    .action(async (o: EventsFlags) => eventsCommand(o, io.out, io.err));
  return program;
}

/** Runs the CLI; resolves with the exit code (never calls process.exit itself). */
export async function runCli(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  let code: number = ExitCode.OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  if (argv.length <= 2) {
    program.outputHelp();
    return ExitCode.USAGE;
  }
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    // A refusal from the master (CliError), or one made here (a data directory in use, a bad agent resource string).
    const local = !(err instanceof CliError) && isBorealisError(err);
    if (err instanceof CliError || local) {
      io.err(`borealis: ${err.message}${local ? ` (${err.code})` : ''}`);
      for (const p of err.problems) io.err(`  ${p.path || '(root)'}: ${p.message}`);
      return err instanceof CliError ? err.exitCode : ExitCode.SERVER_ERROR;
    }
    io.err(`borealis: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return ExitCode.SERVER_ERROR;
  }
}

/** Entry point for bin/borealis.js and for `node --import tsx src/cli/main.ts`. */
export async function main(argv: readonly string[] = process.argv): Promise<never> {
  // The reader of our output went away (`borealis events | head -1`): stop quietly, as a tool killed by SIGPIPE
  // would, instead of dying on an unhandled 'error' event.
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(ExitCode.OK);
      throw err;
    });
  }
  const code = await runCli(argv);
  // A pipe takes 64 KiB at a time; what it has not taken yet is queued in the stream, and process.exit would drop
  // it (`borealis tasks --json | wc -c` stopped at 65536). Wait until stdout and stderr have handed everything over.
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
  process.exit(code);
}

function isEntry(): boolean {
  if (process.argv[1] === undefined) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) void main();
