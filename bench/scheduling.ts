#!/usr/bin/env node
/**
 * `npm run bench -- [--scenario placement|trace] [--nodes N] [--tasks N] [--selection sampled|exact]
 *   [--policy binpack|spread|balanced] [--workers N] [--runs N] [--json] [--quick]`
 * Without --scenario: the standard set (1k/10k/100k nodes x sampled/exact x binpack/spread x
 * 1 worker/all workers, 5 interleaved runs of each, the median reported). --quick: a small version of every scenario but the balancer's, in seconds (the balancer
 * starts HAProxy, nginx and wrk: `--scenario balancer --quick` is its own small version).
 */
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { TRACE_FORMATS, type TraceFormat } from './trace/index.js';
import { fmtInt, formatTable } from './lib/report.js';
import { type PlacementRunOptions, type PlacementRunResult, runPlacement } from './scenarios/placement.js';
import { type TraceRunResult, runTrace } from './scenarios/trace.js';
import { type SubmitRunResult, runSubmit } from './scenarios/submit.js';
import { TARGETS, type TargetName, balancerDefaults, formatBalancerReport, runBalancer } from './scenarios/balancer.js';
import { type EventsScenarioFlags, eventsScenario } from './scenarios/events.js';
import type { PolicyName } from '../src/placement/scoring/policy.js';

function positiveInt(v: string): number {
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

const program = new Command()
  .name('bench')
  // Usage errors exit 2, as the borealis and borealis-loadgen commands do (1 is a failed run).
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .description('Borealis scheduling benchmark: placement throughput and latency, or trace replay')
  .addOption(new Option('--scenario <name>', 'placement, trace, submit, balancer or events (default: the standard set)').choices(['placement', 'trace', 'submit', 'balancer', 'events']))
  .option('--nodes <n>', 'nodes in the cluster', positiveInt)
  .option('--tasks <n>', 'tasks to place', positiveInt)
  .addOption(new Option('--selection <s>', 'exact or sampled').choices(['exact', 'sampled']).default('sampled'))
  .addOption(new Option('--policy <p>', 'binpack, spread or balanced').choices(['binpack', 'spread', 'balanced']).default('binpack'))
  .option('--workers <n>', 'placement threads (default: one per core)', positiveInt)
  .option('--sample-k <k>', 'candidates per sampled decision', positiveInt, 4)
  .option('--seed <n>', 'workload and placement seed', positiveInt, 42)
  .option('--batch <n>', 'tasks per place() call', positiveInt, 4096)
  .option('--inflight <n>', 'place() calls outstanding at once', positiveInt, 4)
  .addOption(new Option('--api <api>', 'groups: one placeGroup() per job; tasks: place() with task objects').choices(['groups', 'tasks']).default('groups'))
  .option('--round-size <n>', 'tasks per worker per allocator round', positiveInt)
  .option('--cold', 'placement: time the first pass (threads still compiling) instead of a second pass after an untimed one', false)
  .option('--trace <file>', 'trace file for --scenario trace')
  .addOption(new Option('--format <f>', 'trace format').choices([...TRACE_FORMATS]))
  .option('--speed <x>', 'replay at x times real time (default: as fast as possible)', positiveNumber)
  .option('--limit <n>', 'replay at most n submissions', positiveInt)
  .option('--machine-cpus <n>', 'trace: cores per machine', positiveNumber)
  .option('--machine-mem <mib>', 'trace: MiB per machine', positiveNumber)
  .option('--instances <n>', 'submit: instances of the service', positiveInt, 1000)
  .option('--agents <n>', 'submit: simulated agents', positiveInt, 50)
  .option('--runs <n>', 'placement: runs of each configuration, the median reported (default 1; 5 in the standard set); submit: runs, fresh master each (default 10); balancer: saturation runs per target', positiveInt, 10)
  .option('--targets <list>', `balancer: targets to run (default: all of ${TARGETS.join(',')})`)
  .option('--duration <s>', 'balancer: seconds per saturation run', positiveNumber)
  .option('--connections <n>', 'balancer: closed-loop connections', positiveInt)
  .option('--threads <list>', 'balancer: borealis --threads values for the scaling runs (default: 1..cores)')
  .option('--rate <n>', 'balancer: req/s of the fixed-rate latency runs (default: half of haproxy\'s saturation)', positiveInt)
  .option('--subscribers <list>', 'events: WebSocket subscriber counts (default 1,10,100)')
  .option('--events <n>', 'events: events published per run (default 500,000)', positiveInt)
  .addOption(new Option('--transport <t>', 'events: uws, node or both').choices(['uws', 'node', 'both']).default('both'))
  .addOption(new Option('--encoding <e>', 'events: protobuf, json or both').choices(['protobuf', 'json', 'both']).default('both'))
  .option('--publish-rate <n>', 'events: events/s published, open loop (default 250,000)', positiveInt)
  .option('--subscriber-threads <n>', 'events: worker threads the subscribers share (default 1)', positiveInt)
  .option('--json', 'one JSON object per run on its own line')
  .option('--quick', 'a small version of every scenario but the balancer (which has its own: --scenario balancer --quick), in seconds; figures too short to compare threads')
  .parse();

const opts = program.opts<{
  scenario?: 'placement' | 'trace' | 'submit' | 'balancer' | 'events';
  subscribers?: string;
  events?: number;
  transport: EventsScenarioFlags['transport'];
  encoding: EventsScenarioFlags['encoding'];
  publishRate?: number;
  subscriberThreads?: number;
  targets?: string;
  duration?: number;
  connections?: number;
  threads?: string;
  rate?: number;
  instances: number;
  agents: number;
  runs: number;
  nodes?: number;
  tasks?: number;
  selection: 'exact' | 'sampled';
  policy: PolicyName;
  workers?: number;
  sampleK: number;
  seed: number;
  batch: number;
  inflight: number;
  api: 'groups' | 'tasks';
  roundSize?: number;
  cold: boolean;
  trace?: string;
  format?: TraceFormat;
  speed?: number;
  limit?: number;
  machineCpus?: number;
  machineMem?: number;
  json?: boolean;
  quick?: boolean;
}>();

const cores = availableParallelism();
const json = opts.json === true;
const progress = !json && process.stdout.isTTY === true;

/** A placement configuration run `runs` times: the run with the median placed/s, and every run's rate. */
type PlacementMedian = PlacementRunResult & { runs: number; placementsPerSecRuns: number[] };

function emit(r: PlacementMedian | TraceRunResult | SubmitRunResult): void {
  if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
}

function placementRow(r: PlacementMedian): (string | number)[] {
  const lo = Math.min(...r.placementsPerSecRuns);
  const hi = Math.max(...r.placementsPerSecRuns);
  return [
    fmtInt(r.nodes),
    fmtInt(r.tasks),
    r.api,
    r.selection,
    r.policy,
    r.workers,
    fmtInt(r.placed),
    fmtInt(r.unplaced),
    fmtInt(r.placementsPerSec),
    r.runs > 1 ? `${fmtInt(lo)}–${fmtInt(hi)}` : '',
    r.latencyUs.p50,
    r.latencyUs.p99,
    r.latencyUs.p999,
    r.latencyUs.max,
    Math.round(r.batchLatencyUs.p99 / 1000),
    r.conflicts,
    `${(r.utilization.cpus * 100).toFixed(1)}%`,
    `${(r.utilization.mem * 100).toFixed(1)}%`,
    r.overcommittedNodes,
  ];
}

const PLACEMENT_HEADERS = [
  'nodes', 'tasks', 'api', 'selection', 'policy', 'workers', 'placed', 'unplaced', 'placed/s (median)', 'range over runs',
  'p50 µs', 'p99 µs', 'p999 µs', 'max µs', 'batch p99 ms', 'conflicts', 'cpu util', 'mem util', 'overcommitted',
];

function base(): Omit<PlacementRunOptions, 'nodes' | 'tasks' | 'workers' | 'selection' | 'policy'> {
  return { sampleK: opts.sampleK, seed: opts.seed, batch: opts.batch, inflight: opts.inflight, progress, api: opts.api, warm: !opts.cold, ...(opts.roundSize !== undefined ? { roundSize: opts.roundSize } : {}) };
}

/** Tasks per run in the standard set: ~10 per node fills the cluster; exact at 100k is capped for time. */
function standardTasks(nodes: number, selection: 'exact' | 'sampled', quick: boolean): number {
  if (quick) return nodes * 10;
  if (selection === 'exact' && nodes >= 100_000) return 200_000;
  return nodes * 10;
}

/** Placement runs given with --runs, else `fallback`. */
function placementRuns(fallback: number): number {
  return program.getOptionValueSource('runs') === 'cli' ? opts.runs : fallback;
}

/**
 * Runs each of `configs` `runs` times, interleaved (a, b, a, b...: a slow phase of this shared machine then
 * touches every configuration alike, and their ratio holds), and keeps the run with the median placed/s of each.
 */
async function medianRuns(configs: PlacementRunOptions[], runs: number): Promise<PlacementMedian[]> {
  const all: PlacementRunResult[][] = configs.map(() => []);
  for (let k = 0; k < runs; k++) {
    for (let c = 0; c < configs.length; c++) {
      const o = configs[c]!;
      if (!json) process.stderr.write(`running ${o.nodes} nodes, ${o.tasks} tasks, ${o.selection}/${o.policy}, ${o.workers} worker(s)${runs > 1 ? `, run ${k + 1}/${runs}` : ''}\n`);
      all[c]!.push(await runPlacement(o));
    }
  }
  return all.map((rs) => {
    const sorted = [...rs].sort((a, b) => a.placementsPerSec - b.placementsPerSec);
    const median = sorted[(sorted.length - 1) >> 1]!;
    // Every run is audited: one over-committed node in any of them fails the benchmark, not just in the median.
    const overcommittedNodes = rs.reduce((n, r) => Math.max(n, r.overcommittedNodes), 0);
    return { ...median, overcommittedNodes, runs: rs.length, placementsPerSecRuns: rs.map((r) => r.placementsPerSec) };
  });
}

async function standardSet(quick: boolean): Promise<void> {
  const sizes = quick ? [1_000, 10_000] : [1_000, 10_000, 100_000];
  const workerCounts = cores > 1 ? [1, cores] : [1];
  const runs = placementRuns(quick ? 1 : 5);
  const results: PlacementMedian[] = [];
  for (const nodes of sizes) {
    for (const selection of ['sampled', 'exact'] as const) {
      for (const policy of ['binpack', 'spread'] as const) {
        const tasks = standardTasks(nodes, selection, quick);
        const medians = await medianRuns(
          workerCounts.map((workers) => ({ ...base(), nodes, tasks, workers, selection, policy })),
          runs,
        );
        for (const r of medians) {
          results.push(r);
          emit(r);
        }
      }
    }
  }
  if (!json) {
    console.log(formatTable(PLACEMENT_HEADERS, results.map(placementRow)));
    console.log('\nRatios in this run:');
    for (const nodes of sizes) {
      for (const selection of ['sampled', 'exact'] as const) {
        for (const policy of ['binpack', 'spread'] as const) {
          const one = results.find((r) => r.nodes === nodes && r.selection === selection && r.policy === policy && r.workers === 1);
          const all = results.find((r) => r.nodes === nodes && r.selection === selection && r.policy === policy && r.workers === cores);
          if (one && all && all !== one) {
            console.log(`  ${fmtInt(nodes)} nodes ${selection}/${policy}: ${cores} workers / 1 worker = ${(all.placementsPerSec / one.placementsPerSec).toFixed(2)}x`);
          }
        }
      }
      const s = results.find((r) => r.nodes === nodes && r.selection === 'sampled' && r.policy === 'binpack' && r.workers === cores);
      const e = results.find((r) => r.nodes === nodes && r.selection === 'exact' && r.policy === 'binpack' && r.workers === cores);
      if (s && e && s.tasks === e.tasks) {
        console.log(
          `  ${fmtInt(nodes)} nodes binpack utilisation, sampled vs exact: cpu ${((s.utilization.cpus - e.utilization.cpus) * 100).toFixed(2)} pts, mem ${((s.utilization.mem - e.utilization.mem) * 100).toFixed(2)} pts`,
        );
      }
    }
  }
  const over = results.reduce((n, r) => n + r.overcommittedNodes, 0);
  if (over > 0) {
    console.error(`FAIL: ${over} over-committed nodes`);
    process.exitCode = 1;
  }
}

function ms(x: number): string {
  return x.toFixed(1);
}

async function submitScenario(instances: number, agents: number, runs: number): Promise<void> {
  const r = await runSubmit({ instances, agents, runs, workers: opts.workers ?? cores, seed: opts.seed });
  emit(r);
  if (!json) {
    console.log(
      formatTable(
        ['instances', 'agents', 'runs', 'submit→running p50 ms', 'p99 ms', 'max ms', 'per-task p99 ms', 'master placed/s', 'allocator placed/s'],
        [[fmtInt(r.instances), r.agents, r.runs, ms(r.submitToRunningMs.p50), ms(r.submitToRunningMs.p99), ms(r.submitToRunningMs.max), ms(r.taskRunningMs.p99), fmtInt(r.masterPlacementsPerSec), fmtInt(r.allocatorPlacementsPerSec)]],
      ),
    );
  }
}

async function balancerScenario(): Promise<void> {
  const d = balancerDefaults(opts.quick === true);
  const targets = opts.targets === undefined ? [...TARGETS] : opts.targets.split(',').map((t) => t.trim());
  const unknown = targets.filter((t) => !(TARGETS as readonly string[]).includes(t));
  if (unknown.length > 0) throw new InvalidArgumentError(`--targets: unknown ${unknown.join(', ')} (known: ${TARGETS.join(', ')})`);
  const r = await runBalancer({
    ...d,
    ...(program.getOptionValueSource('runs') === 'cli' ? { runs: opts.runs } : {}),
    ...(opts.duration !== undefined ? { durationSec: opts.duration } : {}),
    ...(opts.connections !== undefined ? { connections: opts.connections } : {}),
    ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
    ...(opts.threads !== undefined ? { threads: opts.threads.split(',').map(positiveInt) } : {}),
    targets: targets as TargetName[],
    phases: ['throughput', 'latency', 'scaling', 'quality'],
    closedLoop: 'auto',
    emit: (row) => {
      if (json) process.stdout.write(`${JSON.stringify(row)}\n`);
    },
    log: (line) => process.stderr.write(`[balancer] ${line}\n`),
    handleSignals: true,
  });
  if (!json) console.log(formatBalancerReport(r.rows));
  if (r.survivors.length > 0 || r.listening.length > 0) {
    console.error(`FAIL: still running after the benchmark: ${r.survivors.map((s) => `${s.name} (pid ${s.pid})`).join(', ')}; still listening: ${r.listening.join(', ')}`);
    process.exitCode = 1;
  }
}

async function main(): Promise<void> {
  if (opts.scenario === 'balancer') {
    await balancerScenario();
    return;
  }
  if (opts.scenario === 'submit') {
    await submitScenario(opts.instances, opts.agents, opts.runs);
    return;
  }
  if (opts.scenario === 'trace') {
    if (!opts.trace || !opts.format) throw new InvalidArgumentError('--scenario trace needs --trace FILE and --format');
    const alibaba = opts.format === 'alibaba-v2018';
    const r = await runTrace({
      file: opts.trace,
      format: opts.format,
      nodes: opts.nodes ?? (alibaba ? 4000 : 12500),
      machineCpus: opts.machineCpus ?? (alibaba ? 96 : 64),
      machineMemMiB: opts.machineMem ?? 96 * 1024,
      workers: opts.workers ?? cores,
      selection: opts.selection,
      policy: opts.policy,
      sampleK: opts.sampleK,
      seed: opts.seed,
      batch: opts.batch,
      ...(opts.speed !== undefined ? { speed: opts.speed } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    });
    emit(r);
    if (!json) {
      console.log(
        formatTable(
          ['trace', 'rows', 'bad rows', 'submitted', 'placed', 'unplaced', 'released', 'placed/s', 'p50 µs', 'p99 µs', 'queue p99 ms', 'overcommitted'],
          [[r.format, fmtInt(r.rows), r.badRows, fmtInt(r.submissions), fmtInt(r.placed), fmtInt(r.unplaced), fmtInt(r.released), fmtInt(r.placementsPerSec), r.latencyUs.p50, r.latencyUs.p99, Math.round(r.queueingDelayUs.p99 / 1000), r.overcommittedNodes]],
        ),
      );
      for (const b of r.badRowSamples) console.log(`  bad row at line ${b.line}: ${b.reason}`);
      if (r.badRows > r.badRowSamples.length) console.log(`  ... and ${r.badRows - r.badRowSamples.length} more bad rows`);
      console.log('utilisation over trace time:');
      for (const u of r.utilizationOverTime) console.log(`  t=${u.traceSec}s cpu ${(u.cpus * 100).toFixed(1)}% mem ${(u.mem * 100).toFixed(1)}% running ${u.running}`);
    }
    if (r.overcommittedNodes > 0) process.exitCode = 1;
    return;
  }
  if (opts.scenario === 'placement' || opts.nodes !== undefined || opts.tasks !== undefined) {
    const nodes = opts.nodes ?? 10_000;
    const r = (
      await medianRuns(
        [{ ...base(), nodes, tasks: opts.tasks ?? nodes * 10, workers: opts.workers ?? cores, selection: opts.selection, policy: opts.policy }],
        placementRuns(1),
      )
    )[0]!;
    emit(r);
    if (!json) console.log(formatTable(PLACEMENT_HEADERS, [placementRow(r)]));
    if (r.overcommittedNodes > 0) process.exitCode = 1;
    return;
  }
  if (opts.scenario === 'events') {
    await eventsRuns();
    return;
  }
  await standardSet(opts.quick === true);
  if (opts.quick) {
    await quickTrace();
    await submitScenario(200, 10, 2);
    await eventsRuns();
  }
}

async function eventsRuns(): Promise<void> {
  const { subscribers, events, transport, encoding, publishRate, subscriberThreads } = opts;
  await eventsScenario(
    { subscribers, events, transport, encoding, rate: publishRate, subscriberThreads, json, quick: opts.quick === true },
    (r) => {
      if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
    },
  );
}

/** --quick also replays a small generated trace of each format, so every scenario runs. */
async function quickTrace(): Promise<void> {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { generateAlibabaTrace, generateGoogleTrace } = await import('./trace/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'borealis-trace-'));
  try {
    for (const [format, text] of [
      ['alibaba-v2018', generateAlibabaTrace(2000, opts.seed)],
      ['google-2011', generateGoogleTrace(5000, opts.seed)],
    ] as const) {
      const file = join(dir, `${format}.csv`);
      writeFileSync(file, text);
      const r = await runTrace({
        file, format, nodes: 200, machineCpus: format === 'alibaba-v2018' ? 96 : 64, machineMemMiB: 96 * 1024,
        workers: cores, selection: 'sampled', policy: 'binpack', sampleK: opts.sampleK, seed: opts.seed, batch: opts.batch,
      });
      emit(r);
      if (!json) console.log(`trace ${format}: ${r.submissions} submissions, ${r.placed} placed, ${r.unplaced} unplaced, ${r.badRows} bad rows, p99 ${r.latencyUs.p99} µs, overcommitted ${r.overcommittedNodes}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
