/** The benchmark's results: one JSON object per line with `--json`, a human table otherwise. */
import type { LatencyMs } from './wrk.js';

export type { LatencyMs };

interface Base {
  scenario: 'balancer';
}

/** First line of every run: what shares the machine, and with what. */
export interface SetupRow extends Base {
  phase: 'setup';
  cores: number;
  note: string;
  cpus: { proxy: string | null; clients: string | null };
  backends: 'nginx' | 'node';
  tools: { closedLoop: string | null; openLoop: string | null };
  versions: Record<string, string>;
  connections: number;
  durationSec: number;
  runs: number;
}

/** A target or phase that did not run, and why (never a number made up in its place). */
export interface SkipRow extends Base {
  phase: 'throughput' | 'latency' | 'quality' | 'scaling';
  target: string;
  skipped: string;
}

/** A target that was meant to run and failed (start-up, crash, load generator error). */
export interface ErrorRow extends Base {
  phase: 'throughput' | 'latency' | 'quality' | 'scaling';
  target: string;
  error: string;
}

interface Measured extends Base {
  target: string;
  transport: string;
  connections: number;
  /** Achieved requests/s. */
  rps: number;
  latencyMs: LatencyMs;
  /** Failed requests: socket errors, timeouts and non-2xx/3xx answers. */
  errors: number;
  /** The non-zero error counts by kind, as the load generator names them. */
  errorKinds: Record<string, number>;
  tool: string;
}

/** Closed loop at saturation: the median run by rps, and every run's rps. */
export interface ThroughputRow extends Measured {
  phase: 'throughput';
  runs: number;
  rpsRuns: number[];
  /** rps / HAProxy's rps (null when HAProxy did not run). */
  ratioToHaproxy: number | null;
  ratioToDirect: number | null;
}

/** Open loop at a fixed rate; latency counted from each request's intended send time. */
export interface LatencyRow extends Measured {
  phase: 'latency';
  rate: number;
  /** Where the rate came from, e.g. "haproxy saturation / 2". */
  rateBasis: string;
  /**
   * The fixed rate / this target's own saturation rate: at 1 or more it cannot keep up, requests
   * queue, and its percentiles measure that queue (null when its saturation was not measured).
   */
  loadOfSaturation: number | null;
  /** p99 / HAProxy's p99 at the same rate: lower is better. */
  ratioToHaproxy: number | null;
  /**
   * Requests the generator could not send at their intended time, and how far behind schedule it ran
   * at worst: non-zero on "direct" means the generator itself limits what this rate can show.
   */
  queued: number | null;
  generatorLagMs: number | null;
}

export interface QualityRow extends Base {
  phase: 'quality';
  case: 'slow-backend' | 'weights';
  target: string;
  transport: string;
  connections: number;
  tool: string;
  delaysMs: number[];
  weights: number[];
  /** Requests each backend answered during the run. */
  requests: number[];
  /** Percent of all requests, per backend. */
  sharesPct: number[];
  /** slow-backend: the slow one's share; weights: the largest distance from the weight share, in points. */
  value: number;
  goal: string;
  met: boolean;
  rps: number;
  errors: number;
  errorKinds: Record<string, number>;
}

export interface ScalingRow extends Measured {
  phase: 'scaling';
  threads: number;
  runs: number;
  rpsRuns: number[];
  ratioToOneThread: number | null;
}

export type Row = SetupRow | SkipRow | ErrorRow | ThroughputRow | LatencyRow | QualityRow | ScalingRow;

export const round2 = (x: number): number => Math.round(x * 100) / 100;
