/** What a run reports: one plain object (the --json output, key for key) and its table for humans. */
import { ERROR_KINDS, type ErrorKind } from './error-kind.js';
import type { LoadMode, ResolvedOptions } from './options.js';
import type { Recorder } from './recorder.js';

/** Latencies of successful measured requests (status < 400), in milliseconds with µs precision. */
export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  /** Samples behind the percentiles: the successful measured requests. */
  count: number;
}

export interface LoadReport {
  url: string;
  mode: LoadMode;
  /** Requests per second asked for; null in closed loop. */
  rate: number | null;
  connections: number;
  pipelining: number;
  /** Outstanding requests allowed (open loop: --max-in-flight; closed loop: connections × pipelining). */
  maxInFlight: number;
  warmupMs: number;
  /** The measured window actually run (shorter than asked when stopped early). */
  durationMs: number;
  /** Measured requests: successes plus every error below. */
  requests: number;
  /** Responses (any status) per second, over the window or up to the last response if the drain ran later. */
  achievedRate: number;
  latencyMs: LatencyMs;
  /** Every kind, zeros included; a failure's latency is not in latencyMs. */
  errors: Record<ErrorKind, number>;
  /** Responses by status code. */
  statusCodes: Record<string, number>;
  /** Response body bytes received by measured requests. */
  bytes: number;
  /** How far behind its schedule the open loop ran at worst (0 in closed loop). */
  maxLagMs: number;
  /** Open-loop requests that could not go out at their intended time (in-flight bound or every connection busy). */
  queued: number;
}

const ms3 = (us: number): number => Math.round(us) / 1000;

export function buildReport(
  o: ResolvedOptions,
  r: Recorder,
  measured: { durationMs: number; measureStart: number; maxLagMs: number; queued: number },
): LoadReport {
  const h = r.histogram;
  const n = h.totalCount;
  const errors = {} as Record<ErrorKind, number>;
  ERROR_KINDS.forEach((k, i) => (errors[k] = r.errors[i]!));
  const statusCodes: Record<string, number> = {};
  r.statusCounts.forEach((count, status) => {
    if (count > 0) statusCodes[String(status)] = count;
  });
  const spanMs = Math.max(measured.durationMs, r.responses > 0 ? r.lastResponseAt - measured.measureStart : 0);
  return {
    url: o.url,
    mode: o.mode,
    rate: o.rate,
    connections: o.connections,
    pipelining: o.pipelining,
    maxInFlight: o.maxInFlight,
    warmupMs: o.warmupMs,
    durationMs: Math.round(measured.durationMs),
    requests: r.requests,
    achievedRate: spanMs > 0 ? Math.round((r.responses * 10_000) / spanMs) / 10 : 0,
    latencyMs: {
      p50: n > 0 ? ms3(h.getValueAtPercentile(50)) : 0,
      p90: n > 0 ? ms3(h.getValueAtPercentile(90)) : 0,
      p99: n > 0 ? ms3(h.getValueAtPercentile(99)) : 0,
      p999: n > 0 ? ms3(h.getValueAtPercentile(99.9)) : 0,
      max: n > 0 ? ms3(h.maxValue) : 0,
      mean: n > 0 ? ms3(r.sumUs / n) : 0,
      count: n,
    },
    errors,
    statusCodes,
    bytes: r.bytes,
    maxLagMs: Math.round(measured.maxLagMs * 1000) / 1000,
    queued: measured.queued,
  };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const sec = (ms: number): string => `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;

function fmtBytes(b: number): string {
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${(b / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The report as a few aligned lines for a terminal. */
export function formatReport(r: LoadReport): string {
  const shape =
    r.mode === 'open'
      ? `open loop at ${int(r.rate ?? 0)} req/s`
      : `closed loop`;
  const pipe = r.pipelining > 1 ? `, pipelining ${r.pipelining}` : '';
  const warm = r.warmupMs > 0 ? ` after ${sec(r.warmupMs)} warmup` : '';
  const l = r.latencyMs;
  const latencyHeads = ['p50', 'p90', 'p99', 'p99.9', 'max', 'mean'];
  const latencyCells = [l.p50, l.p90, l.p99, l.p999, l.max, l.mean].map((v) => v.toFixed(3));
  const widths = latencyHeads.map((h, i) => Math.max(h.length, latencyCells[i]!.length));
  const row = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  const errorText = ERROR_KINDS.map((k) => `${k} ${int(r.errors[k])}`).join(', ');
  const statusText = Object.entries(r.statusCodes)
    .map(([code, n]) => `${code}: ${int(n)}`)
    .join(', ');
  const lines = [
    `${r.url}: ${shape}, ${r.connections} connection${r.connections === 1 ? '' : 's'}${pipe}, ${sec(r.durationMs)}${warm}`,
    `requests      ${int(r.requests)} (${int(l.count)} ok), ${r.achievedRate.toLocaleString('en-US')} responses/s, ${fmtBytes(r.bytes)} received`,
    `latency ms    ${row(latencyHeads)}`,
    `              ${row(latencyCells)}`,
    `errors        ${errorText}`,
    `status        ${statusText === '' ? '(no responses)' : statusText}`,
  ];
  if (r.mode === 'open') {
    lines.push(
      `generator     max lag ${r.maxLagMs.toFixed(3)} ms; ${int(r.queued)} requests waited for a free slot (max in flight ${int(r.maxInFlight)})`,
    );
  }
  return lines.join('\n');
}
