/** The human report: one table per phase, what was skipped and why, and the goals checked. */
import { fmtInt, formatTable } from '../lib/report.js';
import type { ErrorRow, LatencyRow, QualityRow, Row, ScalingRow, SetupRow, SkipRow, ThroughputRow } from './rows.js';

/** "0", or "12 (timeout 10, reset 2)". */
const errs = (r: { errors: number; errorKinds: Record<string, number> }): string => {
  const kinds = Object.entries(r.errorKinds).map(([k, n]) => `${k} ${n}`);
  return kinds.length === 0 ? String(r.errors) : `${r.errors} (${kinds.join(', ')})`;
};
const x = (r: number | null): string => (r === null ? '-' : `${r.toFixed(2)}x`);
const isThroughput = (r: Row): r is ThroughputRow => r.phase === 'throughput' && 'rps' in r;
const isLatency = (r: Row): r is LatencyRow => r.phase === 'latency' && 'rate' in r;
const isQuality = (r: Row): r is QualityRow => r.phase === 'quality' && 'case' in r;
const isScaling = (r: Row): r is ScalingRow => r.phase === 'scaling' && 'threads' in r;

function goal(label: string, value: string, met: boolean | null): string {
  return `  ${met === null ? 'n/a ' : met ? 'met ' : 'MISS'}  ${label}: ${value}`;
}

export function formatBalancerReport(rows: readonly Row[]): string {
  const out: string[] = [];
  const setup = rows.find((r): r is SetupRow => r.phase === 'setup');
  if (setup) {
    out.push(`Balancer benchmark: ${setup.note}.`);
    out.push(
      `Backends: 4 x ${setup.backends === 'nginx' ? 'nginx (worker_processes 1, fixed body)' : 'Node (nginx not installed)'}; ` +
        `closed loop: ${setup.tools.closedLoop ?? 'none'}, ${setup.connections} connections, median of ${setup.runs} x ${setup.durationSec} s; ` +
        `open loop: ${setup.tools.openLoop ?? 'none'}.`,
    );
    const v = Object.entries(setup.versions).map(([k, val]) => `${k} ${val}`);
    if (v.length > 0) out.push(`Versions: ${v.join(', ')}.`);
  }

  const tp = rows.filter(isThroughput);
  if (tp.length > 0) {
    out.push('', 'Throughput at saturation (closed loop)');
    out.push(
      formatTable(
        ['target', 'transport', 'req/s', 'vs haproxy', 'vs direct', 'p50 ms', 'p99 ms', 'p999 ms', 'max ms', 'errors', 'runs req/s'],
        tp.map((r) => [r.target, r.transport, fmtInt(r.rps), x(r.ratioToHaproxy), x(r.ratioToDirect), r.latencyMs.p50, r.latencyMs.p99, r.latencyMs.p999, r.latencyMs.max, errs(r), r.rpsRuns.map(fmtInt).join(' ')]),
      ),
    );
  }

  const lat = rows.filter(isLatency);
  if (lat.length > 0) {
    out.push('', `Latency at a fixed ${fmtInt(lat[0]!.rate)} req/s (${lat[0]!.rateBasis}), open loop, from intended send time`);
    out.push(
      formatTable(
        ['target', 'transport', 'of its saturation', 'achieved req/s', 'p50 ms', 'p99 ms', 'p999 ms', 'max ms', 'p99 vs haproxy', 'errors', 'queued', 'gen lag ms'],
        lat.map((r) => [r.target, r.transport, r.loadOfSaturation === null ? '-' : `${Math.round(r.loadOfSaturation * 100)}%`, fmtInt(r.rps), r.latencyMs.p50, r.latencyMs.p99, r.latencyMs.p999, r.latencyMs.max, x(r.ratioToHaproxy), errs(r), r.queued ?? '-', r.generatorLagMs ?? '-']),
      ),
    );
    if (lat.some((r) => (r.loadOfSaturation ?? 0) >= 1)) {
      out.push('Note: a target at 100% or more of its own saturation rate cannot keep up; its percentiles measure the queue that builds.');
    }
    const direct = lat.find((r) => r.target === 'direct');
    if (direct && (direct.queued ?? 0) > 0) {
      out.push(`Note: even "direct" had ${fmtInt(direct.queued!)} requests wait for a free connection: at this rate the generator and backends on their core add latency of their own, in every row alike.`);
    }
  }

  const q = rows.filter(isQuality);
  if (q.length > 0) {
    out.push('', 'Balancing quality (4 Node backends counting their requests; closed loop)');
    out.push(
      formatTable(
        ['case', 'target', 'shares b1/b2/b3/b4 %', 'value', 'goal', 'met', 'req/s', 'errors'],
        q.map((r) => [r.case, r.target, r.sharesPct.map((s) => s.toFixed(1)).join(' / '), r.case === 'weights' ? `${r.value} pts` : `${r.value}%`, r.goal, r.met ? 'yes' : 'NO', fmtInt(r.rps), errs(r)]),
      ),
    );
  }

  const sc = rows.filter(isScaling);
  if (sc.length > 0) {
    out.push('', 'Scaling: borealis --threads N (proxy unpinned: shares every core with the load generator and backends)');
    out.push(formatTable(['threads', 'transport', 'req/s', 'vs 1 thread', 'p99 ms', 'errors'], sc.map((r) => [r.threads, r.transport, fmtInt(r.rps), x(r.ratioToOneThread), r.latencyMs.p99, errs(r)])));
  }

  const skipped = rows.filter((r): r is SkipRow => 'skipped' in r);
  if (skipped.length > 0) {
    out.push('', 'Skipped:');
    for (const s of skipped) out.push(`  ${s.phase} ${s.target}: ${s.skipped}`);
  }
  const errors = rows.filter((r): r is ErrorRow => 'error' in r);
  if (errors.length > 0) {
    out.push('', 'Errors:');
    for (const e of errors) out.push(`  ${e.phase} ${e.target}: ${e.error}`);
  }

  out.push('', 'Goals (issue 6):');
  const t = (name: string): ThroughputRow | undefined => tp.find((r) => r.target === name);
  const l = (name: string): LatencyRow | undefined => lat.find((r) => r.target === name);
  const uws = t('borealis');
  const uwsLabel = `borealis (${uws?.transport ?? 'auto'})`;
  out.push(goal(`${uwsLabel} throughput >= 0.8x haproxy`, x(uws?.ratioToHaproxy ?? null), uws?.ratioToHaproxy == null ? null : uws.ratioToHaproxy >= 0.8));
  const lu = l('borealis');
  out.push(goal(`${uwsLabel} p99 at the fixed rate <= 2x haproxy`, x(lu?.ratioToHaproxy ?? null), lu?.ratioToHaproxy == null ? null : lu.ratioToHaproxy <= 2));
  const nf = t('borealis-native-free');
  const hp = t('http-proxy');
  const nfRatio = nf && hp && hp.rps > 0 ? nf.rps / hp.rps : null;
  // Three decimals: 1.495 must not print as a "1.50x" that missed.
  out.push(goal('borealis native-free throughput >= 1.5x http-proxy', nfRatio === null ? '-' : `${nfRatio.toFixed(3)}x`, nfRatio === null ? null : nfRatio >= 1.5));
  for (const c of ['slow-backend', 'weights'] as const) {
    const r = q.find((row) => row.case === c && row.target === 'borealis');
    out.push(goal(`borealis ${c}: ${r?.goal ?? c}`, r ? (c === 'weights' ? `${r.value} pts` : `${r.value}%`) : '-', r ? r.met : null));
  }
  return out.join('\n');
}
