/**
 * `borealis up`: the embedded default. A master in this process (journal under the data dir), its HTTP API, N
 * local agent child processes of different sizes and zones, and the demo service. Ctrl-C stops the agents first
 * (they kill their tasks and report it while the master still listens), then the master.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startApiServer, type ApiServer } from '../api/server.js';
import { BALANCER_LISTEN_ENV, Balancer } from '../balancer/index.js';
import { isBorealisError } from '../api/errors.js';
import { Master } from '../master/index.js';
import type { AgentView, JobSpec } from '../master/types.js';
import { formatAddress, resolveListen } from '../transport/index.js';
import { lineLogger, resolveBalancerListen } from './balancer.js';
import { demoServiceSpec } from './demo.js';
import { CliError, ExitCode, usage } from './exit.js';
import { table } from './table.js';

export interface UpFlags {
  listen?: string;
  balancerListen?: string;
  dataDir: string;
  demo: boolean;
  agents: string;
}

/**
 * Agent shapes, cycled when more are asked for: three sizes in three zones so constraints and spread have
 * something to work with, and disjoint port ranges so tasks of different agents never collide on one machine.
 */
const PROFILES = [
  { resources: 'cpus=2,mem=2Gi,disk=10Gi,gpus=0', zone: 'a' },
  { resources: 'cpus=4,mem=4Gi,disk=20Gi,gpus=0', zone: 'b' },
  { resources: 'cpus=8,mem=8Gi,disk=40Gi,gpus=0', zone: 'c' },
];
/**
 * 400 ports an agent from 20000: even 30 agents stay below 32768, where Linux's ephemeral range starts, so a
 * port handed to a task is not one the kernel gives out for outgoing connections or listen(0) meanwhile.
 */
const FIRST_PORT = 20_000;
const PORTS_PER_AGENT = 400;
/** Agents given this long to kill their tasks (their grace periods) before they are killed themselves. */
const AGENT_STOP_MS = 15_000;
/** How long `up` waits for agents and for the demo's instances before printing what it has. */
const READY_WAIT_MS = 60_000;

export async function upCommand(flags: UpFlags): Promise<number> {
  const count = Number(flags.agents);
  if (!Number.isInteger(count) || count < 0 || count > 30) throw usage(`--agents must be a whole number in 0..30, got ${flags.agents}`);
  const listen = (() => {
    try {
      return resolveListen(flags.listen);
    } catch (err) {
      throw usage((err as Error).message);
    }
  })();
  const balancerListen = resolveBalancerListen(flags.balancerListen, process.env, '--balancer-listen');
  const dataDir = resolve(flags.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const say = (line = ''): void => void process.stdout.write(`${line}\n`);

  const master = await Master.open({ dataDir });
  let api: ApiServer;
  try {
    api = await startApiServer(master, listen);
  } catch (err) {
    await master.close();
    const e = err as NodeJS.ErrnoException;
    throw new CliError(
      ExitCode.SERVER_ERROR,
      `cannot listen on ${formatAddress(listen)}: ${e.code ?? e.message}${e.code === 'EADDRINUSE' ? ' (is another borealis running? try --listen)' : ''}`,
    );
  }
  const masterAddr = formatAddress(api.address);

  // The balancer in this process, fed by the master's bus; its metrics join the master's /metrics and its stats
  // go on the event stream. Only warnings (ejections) are logged: endpoint churn is what `borealis events` shows.
  // Its front end is chosen as for `borealis balancer` (uWebSockets.js when it loads; $BOREALIS_NATIVE=0: node:http),
  // and the one line saying which and why is printed below with its address.
  const quiet = lineLogger('balancer', false);
  let balancer: Balancer;
  try {
    balancer = new Balancer({ feed: { master }, listen: balancerListen, logger: { ...quiet, info: () => undefined } });
  } catch (err) {
    await master.close();
    await api.close();
    throw new CliError(ExitCode.USAGE, isBorealisError(err) ? err.message : String(err));
  }
  try {
    await balancer.start();
  } catch (err) {
    await balancer.close();
    await master.close();
    await api.close();
    const e = err as NodeJS.ErrnoException;
    throw new CliError(
      ExitCode.SERVER_ERROR,
      `the balancer cannot listen on ${formatAddress(balancerListen)}: ${e.code ?? e.message}${e.code === 'EADDRINUSE' ? ` (try --balancer-listen or ${BALANCER_LISTEN_ENV})` : ''}`,
    );
  }
  const balancerUrl = balancer.url;

  const children: ChildProcess[] = [];
  let stopping = false;
  // If this process dies some other way, do not leave agents (and through them tasks) behind.
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const stopped = new Promise<void>((done) => {
    const stop = async (signal: string): Promise<void> => {
      if (stopping) {
        say(`${signal} again: killing the agents now`);
        for (const c of children) c.kill('SIGKILL');
        return;
      }
      stopping = true;
      say(`\n${signal}: stopping ${children.length} agent(s) (they kill their tasks), then the master`);
      await Promise.all(children.map((c) => stopChild(c)));
      await balancer.close();
      await master.close();
      await api.close();
      say('stopped');
      done();
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  });

  const agentLines: string[][] = [];
  for (let i = 0; i < count; i++) {
    const p = PROFILES[i % PROFILES.length];
    const first = FIRST_PORT + i * PORTS_PER_AGENT;
    const workDir = join(dataDir, 'agents', String(i + 1));
    mkdirSync(workDir, { recursive: true });
    const logFile = join(workDir, 'agent.log');
    const ports = `${first}-${first + PORTS_PER_AGENT - 1}`;
    const args = [
      'agent',
      '--master', masterAddr,
      '--resources', p.resources,
      '--ports', ports,
      '--attributes', `zone=${p.zone},rack=r${i + 1}`,
      '--advertise-ip', '127.0.0.1',
      '--work-dir', workDir,
    ];
    const fd = openSync(logFile, 'a');
    // The same entry this command was started with (bin/borealis.js, or src/cli/main.ts under tsx).
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.on('exit', (code, signal) => {
      if (stopping) return;
      // Its last words say why (a work dir still held by an agent of an earlier run, a bad flag...).
      const why = lastLine(logFile);
      say(`agent ${i + 1} exited unexpectedly (${signal ?? `code ${code}`})${why === '' ? '' : `: ${why}`}; see ${logFile}`);
    });
    children.push(child);
    agentLines.push([String(i + 1), `zone=${p.zone}`, p.resources, ports, `pid ${child.pid}`, logFile]);
  }

  say(`borealis master on http://${masterAddr} (data in ${dataDir})`);
  // Registered in any state: after a restart a drained agent comes back draining, and is there all the same.
  await waitUntil(() => stopping || master.listAgents().length >= count, READY_WAIT_MS);

  let demo: JobSpec | null = null;
  if (flags.demo && !stopping) {
    demo = demoServiceSpec();
    const existing = master.listJobs().find((j) => j.name === demo!.name);
    if (existing?.state === 'running') {
      say(`${demo.name} already exists (from an earlier run); not submitting it again`);
      demo = existing.spec;
    } else {
      try {
        await master.submitJob(demo);
        say(`submitted ${demo.name} (${demo.instances} instances)`);
      } catch (err) {
        say(`could not submit ${demo.name}: ${isBorealisError(err) ? `${err.code}: ${err.message}` : String(err)}`);
        demo = null;
      }
    }
    if (demo) {
      const name = demo.name;
      const want = demo.instances;
      const ready = await waitUntil(
        () => stopping || master.listTasks(name).filter((t) => t.state === 'running').length >= want,
        READY_WAIT_MS,
      );
      if (!ready) say(`${name}: not every instance is running yet; \`borealis tasks ${name}\` shows why`);
    }
  }

  if (!stopping) {
    say('');
    say(`master   http://${masterAddr}   (borealis status / jobs / tasks / agents --master ${masterAddr})`);
    say(`metrics  http://${masterAddr}/metrics`);
    say(`balancer ${balancerUrl}   (${balancer.front.transport}${balancer.frontEndReason === null ? '' : `: ${balancer.frontEndReason}`}; every service with an http section)`);
    say('');
    say('agents');
    const byAddr = master.listAgents();
    say(indent(table(['#', 'ZONE', 'RESOURCES', 'PORTS', 'PROCESS', 'LOG'], agentLines)));
    for (const line of registeredLines(byAddr, count)) say(indent(line));
    if (demo) {
      say('');
      say(`${demo.name}`);
      const tasks = master.listTasks(demo.name).filter((t) => t.state !== 'killed' && t.state !== 'finished' && t.state !== 'failed' && t.state !== 'lost');
      for (const t of tasks) say(indent(`${t.id.padEnd(24)} ${t.state.padEnd(9)} ${t.endpoint ? `curl http://${t.endpoint}/` : '(no endpoint yet)'}`));
      if (demo.http) say(indent(`through the balancer, in turn: curl ${balancerUrl}${demo.http.pathPrefix ?? '/'}`));
    }
    say('');
    say('Ctrl-C stops everything.');
  }
  await stopped;
  return ExitCode.OK;
}

/**
 * What `up` says of the agents that registered: every one counts whatever its state, and the draining and
 * lost ones are named, since a draining agent (one drained before a restart) takes no new tasks.
 */
export function registeredLines(agents: readonly Pick<AgentView, 'id' | 'state'>[], expected: number): string[] {
  const of = (state: AgentView['state']): string[] => agents.filter((a) => a.state === state).map((a) => a.id);
  const draining = of('draining');
  const lost = of('lost');
  const notes = [draining.length > 0 ? `${draining.length} draining` : '', lost.length > 0 ? `${lost.length} lost` : ''].filter((n) => n !== '');
  const lines = [`${agents.length} of ${expected} registered${notes.length > 0 ? ` (${notes.join(', ')})` : ''}: ${agents.map((a) => a.id).join(', ') || '-'}`];
  if (draining.length > 0) lines.push(`draining (no new tasks): ${draining.join(', ')}; \`borealis undrain <agent>\` puts one back to work`);
  if (lost.length > 0) lines.push(`lost: ${lost.join(', ')}`);
  return lines;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const force = setTimeout(() => c.kill('SIGKILL'), AGENT_STOP_MS);
    c.once('exit', () => {
      clearTimeout(force);
      done();
    });
    c.kill('SIGTERM');
  });
}

/** The last non-empty line of a file (only its last 4 KiB are read), or '' when there is none. */
export function lastLine(file: string): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, 4096));
      readSync(fd, buf, 0, buf.length, size - buf.length);
      const lines = buf.toString('utf8').split('\n').filter((l) => l.trim() !== '');
      return lines.at(-1)?.trim() ?? '';
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}
