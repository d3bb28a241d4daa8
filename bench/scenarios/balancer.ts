/**
 * `npm run bench -- --scenario balancer`: Borealis's load balancer next to HAProxy, nginx and the
 * `http-proxy` package, in front of the same four local backends, in one run.
 *
 * Phases, in order: throughput at saturation (closed loop, median of short runs, every target);
 * p99 at a fixed rate of half HAProxy's saturation (open loop); Borealis with more balancer threads
 * (when it has `--threads`); balancing quality (a slow backend, weights 1:2:3:4). Whatever cannot run
 * on this machine is skipped with the reason printed. Every process it starts is stopped at the end,
 * on an error and on Ctrl-C, and the run checks that nothing it started still exists or listens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Backends, startCountingBackends, startNginxBackends } from '../balancer/backends.js';
import { borealisSupport } from '../balancer/borealis.js';
import { errorText, type RunContext } from '../balancer/context.js';
import { cpuLayout } from '../balancer/cpus.js';
import { latencyPhase, fixedRate } from '../balancer/latency.js';
import type { ClosedLoop, OpenLoop } from '../balancer/load.js';
import { findLoadgen } from '../balancer/loadgen.js';
import { isListening } from '../balancer/net.js';
import { Supervisor } from '../balancer/processes.js';
import { findProgram } from '../balancer/programs.js';
import { QUALITY_TARGETS, qualityPhase } from '../balancer/quality.js';
import type { Row } from '../balancer/rows.js';
import { scalingPhase } from '../balancer/scaling.js';
import { type Installed, type RunningTarget, TARGETS, type TargetName, skipReason, startTarget } from '../balancer/targets.js';
import { throughputPhase } from '../balancer/throughput.js';
import { Wrk } from '../balancer/wrk.js';

export { formatBalancerReport } from '../balancer/table.js';
export { TARGETS, type TargetName, type Row };

export const PHASES = ['throughput', 'latency', 'scaling', 'quality'] as const;
export type Phase = (typeof PHASES)[number];

export interface BalancerRunOptions {
  /** Closed-loop connections (and open-loop connection pool), 64 as in the issue. */
  connections: number;
  /** Saturation runs per target; the median is reported. */
  runs: number;
  durationSec: number;
  warmupSec: number;
  latencyDurationSec: number;
  /** Open-loop load sent before the measured window (the generator's JIT warm-up). */
  latencyWarmupSec: number;
  qualityDurationSec: number;
  targets: readonly TargetName[];
  /** Targets for the quality runs (default borealis, with haproxy and nginx as the reference). */
  qualityTargets?: readonly TargetName[];
  phases: readonly Phase[];
  /** Rate of the open-loop runs (default: half of HAProxy's saturation rate, as in the issue). */
  rate?: number;
  /** Thread counts for the scaling runs (default 1..cores). */
  threads?: readonly number[];
  /**
   * Node arguments that run the `borealis` CLI (default: this repository's, compiled or through
   * tsx); a test can point it at a stand-in.
   */
  borealisCli?: readonly string[];
  /** Which closed-loop generator: wrk when installed (auto), or our loadgen. */
  closedLoop: 'auto' | 'wrk' | 'loadgen';
  emit: (row: Row) => void;
  log: (line: string) => void;
  /** Stop everything and exit on SIGINT/SIGTERM (the CLI); tests leave it off. */
  handleSignals: boolean;
}

/** Full: medians of 3 x 5 s as in the issue. Quick: one 1 s run each, the whole thing in seconds. */
export function balancerDefaults(quick: boolean): Pick<BalancerRunOptions, 'runs' | 'durationSec' | 'warmupSec' | 'latencyDurationSec' | 'latencyWarmupSec' | 'qualityDurationSec' | 'connections'> {
  return quick
    ? { connections: 64, runs: 1, durationSec: 1, warmupSec: 1, latencyDurationSec: 2, latencyWarmupSec: 0.5, qualityDurationSec: 1 }
    : { connections: 64, runs: 3, durationSec: 5, warmupSec: 2, latencyDurationSec: 10, latencyWarmupSec: 1, qualityDurationSec: 5 };
}

export interface BalancerRunReport {
  rows: Row[];
  /** Every process group the run started. */
  started: { name: string; pid: number }[];
  /** Every port one of its processes listened on. */
  ports: number[];
  /** Process groups still alive after the run (always empty unless stopping failed). */
  survivors: { name: string; pid: number }[];
  /** Ports still accepting connections after the run (always empty unless stopping failed). */
  listening: number[];
}

async function versions(sup: Supervisor, inst: Installed, wrk: string | null): Promise<Record<string, string>> {
  const v: Record<string, string> = { node: process.version };
  const ask = async (name: string, bin: string | null, args: string[], re: RegExp): Promise<void> => {
    if (bin === null) return;
    const p = sup.start(`${name} version`, bin, args, { quiet: true });
    await p.exited;
    const m = re.exec(p.output);
    if (m) v[name] = m[1]!;
  };
  await ask('haproxy', inst.haproxy, ['-v'], /version (\S+)/);
  await ask('nginx', inst.nginx, ['-v'], /nginx\/(\S+)/);
  await ask('wrk', wrk, ['-v'], /wrk (\S+)/);
  return v;
}

function chooseClosedLoop(which: BalancerRunOptions['closedLoop'], wrk: Wrk | null, loadgen: OpenLoop & ClosedLoop | null): ClosedLoop | null {
  if (which === 'wrk') return wrk;
  if (which === 'loadgen') return loadgen;
  return wrk ?? loadgen;
}

export async function runBalancer(o: BalancerRunOptions): Promise<BalancerRunReport> {
  const rows: Row[] = [];
  const emit = (r: Row): void => {
    rows.push(r);
    o.emit(r);
  };
  const dir = mkdtempSync(join(tmpdir(), 'borealis-balancer-'));
  const sup = new Supervisor({ log: o.log, taskset: findProgram('taskset') });
  const ports = new Set<number>();
  const report: BalancerRunReport = { rows, started: sup.started, ports: [], survivors: [], listening: [] };

  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      await sup.stopAll();
      sup.dispose();
      report.survivors = sup.survivors();
      report.ports = [...ports];
      const open = await Promise.all(report.ports.map(async (p) => ((await isListening(p)) ? p : -1)));
      report.listening = open.filter((p) => p >= 0);
      rmSync(dir, { recursive: true, force: true });
    })());
  // First signal: stop everything in order, then exit. A second one exits at once; the
  // supervisor's exit hook still SIGKILLs whatever runs, so even then nothing is left behind.
  const onSignal = (sig: NodeJS.Signals): void => {
    const code = sig === 'SIGINT' ? 130 : 143;
    if (cleaning !== undefined) process.exit(code);
    o.log(`${sig}: stopping every process the benchmark started`);
    void cleanup().finally(() => process.exit(code));
  };
  if (o.handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  try {
    const cores = availableParallelism();
    const layout = cpuLayout(cores, findProgram('taskset') !== null);
    const wrkBin = findProgram('wrk');
    const wrk = wrkBin !== null ? new Wrk(wrkBin, dir) : null;
    const loadgen = findLoadgen();
    const qualityTargets = o.qualityTargets ?? QUALITY_TARGETS;
    const needBorealis =
      o.targets.some((t) => t.startsWith('borealis')) ||
      o.phases.includes('scaling') ||
      (o.phases.includes('quality') && qualityTargets.some((t) => t.startsWith('borealis')));
    const inst: Installed = {
      nginx: findProgram('nginx'),
      haproxy: findProgram('haproxy'),
      borealis: needBorealis ? await borealisSupport(sup, o.borealisCli) : { missing: 'not selected', threads: false },
      ...(o.borealisCli !== undefined ? { borealisCli: o.borealisCli } : {}),
    };
    const closed = chooseClosedLoop(o.closedLoop, wrk, loadgen);
    const ctx: RunContext = { sup, inst, dir, layout, closed, open: loadgen, connections: o.connections, upstreams: [], log: o.log, emit, ports };

    emit({
      scenario: 'balancer',
      phase: 'setup',
      cores,
      note: layout.note,
      cpus: { proxy: layout.proxy ?? null, clients: layout.clients ?? null },
      backends: inst.nginx !== null ? 'nginx' : 'node',
      tools: { closedLoop: closed?.name ?? null, openLoop: loadgen?.name ?? null },
      versions: await versions(sup, inst, wrkBin),
      connections: o.connections,
      durationSec: closed ? Math.max(o.durationSec, closed.minDurationSec) : o.durationSec,
      runs: o.runs,
    });
    if (closed === null) {
      const why = o.closedLoop === 'auto' ? 'neither wrk nor loadgen is available' : `${o.closedLoop} is not available`;
      for (const phase of o.phases) emit({ scenario: 'balancer', phase, target: 'all', skipped: why });
      return report;
    }

    // Throughput backends: nginx as in the issue; Node ones when nginx is missing, said in the setup row.
    const backends: Backends = inst.nginx !== null
      ? await startNginxBackends(sup, inst.nginx, dir, layout.clients)
      : await startCountingBackends(sup, 'node-backends', [0, 0, 0, 0], [1, 1, 1, 1], layout.clients);
    ctx.upstreams = backends.upstreams;
    for (const u of backends.upstreams) ports.add(u.port);

    if (o.phases.includes('throughput') || o.phases.includes('latency')) {
      // Started together (Node targets take a moment to compile), kept in TARGETS order.
      const runnable = o.targets.filter((name) => {
        const why = skipReason(name, inst);
        if (why !== null) emit({ scenario: 'balancer', phase: 'throughput', target: name, skipped: why });
        return why === null;
      });
      const started = await Promise.allSettled(runnable.map((name) => startTarget(name, { sup, inst, dir, cpus: layout.proxy }, backends.upstreams)));
      const running: RunningTarget[] = [];
      started.forEach((s, i) => {
        if (s.status === 'fulfilled') {
          ports.add(s.value.port);
          running.push(s.value);
        } else emit({ scenario: 'balancer', phase: 'throughput', target: runnable[i]!, error: `start: ${errorText(s.reason)}` });
      });
      const tp = o.phases.includes('throughput') ? await throughputPhase(ctx, running, { runs: o.runs, durationSec: o.durationSec, warmupSec: o.warmupSec }) : [];
      if (o.phases.includes('latency')) {
        const rate = o.rate !== undefined ? { rate: o.rate, basis: 'given (--rate)' } : fixedRate(tp);
        if (loadgen === null) emit({ scenario: 'balancer', phase: 'latency', target: 'all', skipped: 'loadgen is not in this build (and Debian has no wrk2)' });
        else if (rate === null) emit({ scenario: 'balancer', phase: 'latency', target: 'all', skipped: 'no saturation rate measured to derive the fixed rate from' });
        else await latencyPhase(ctx, running.filter((t) => tp.some((r) => r.target === t.name)), tp, rate, { durationSec: o.latencyDurationSec, warmupSec: o.latencyWarmupSec });
      }
      for (const t of running) if (t.proc) await sup.stop(t.proc);
    }

    if (o.phases.includes('scaling')) {
      if (inst.borealis.missing !== null) emit({ scenario: 'balancer', phase: 'scaling', target: 'borealis', skipped: inst.borealis.missing });
      else if (!inst.borealis.threads) emit({ scenario: 'balancer', phase: 'scaling', target: 'borealis', skipped: '`borealis balancer` has no --threads flag yet' });
      else {
        const threads = o.threads ?? Array.from({ length: cores }, (_, i) => i + 1);
        await scalingPhase(ctx, threads, { runs: o.runs, durationSec: o.durationSec, warmupSec: o.warmupSec });
      }
    }
    for (const p of backends.procs) await sup.stop(p);

    if (o.phases.includes('quality')) {
      for (const name of qualityTargets) {
        const why = skipReason(name, inst);
        if (why !== null) emit({ scenario: 'balancer', phase: 'quality', target: name, skipped: why });
      }
      await qualityPhase(ctx, qualityTargets, o.qualityDurationSec);
    }
    return report;
  } finally {
    await cleanup();
    if (o.handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
