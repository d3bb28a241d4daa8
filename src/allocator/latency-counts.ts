import { build as buildHistogram, type Histogram } from 'hdr-histogram-js';

/**
 * Per-decision latency counted where it is measured: each placement thread adds to its own row of
 * log-linear buckets in one SharedArrayBuffer, and the allocator's thread turns the rows into an HDR
 * histogram only when someone asks. Recording a million decisions a second on the allocator's thread
 * (one HDR record each, after copying the figure through the task buffer) was a tenth of that
 * thread's work, on the path every round waits for.
 *
 * Buckets have HDR's layout at 3 significant digits: values below 2048 ns count exactly; above,
 * each power of two is split in 1024 equal buckets (relative error < 0.1%). Values are clamped to
 * 2^32 - 1 ns (4.3 s): a single decision never takes that long.
 */
const SUB_BUCKETS = 2048;
const HALF = SUB_BUCKETS / 2;
/** 2048 exact values, then 21 powers of two (2^11 .. 2^31) of 1024 buckets each. */
export const LATENCY_BUCKETS = SUB_BUCKETS + 21 * HALF;

export function bucketOf(ns: number): number {
  if (ns < SUB_BUCKETS) return ns < 0 ? 0 : ns | 0;
  const v = ns >= 0xffffffff ? 0xffffffff : ns >>> 0;
  const e = 31 - Math.clz32(v) - 10; // v >>> e is in [1024, 2048)
  return SUB_BUCKETS + (e - 1) * HALF + ((v >>> e) - HALF);
}

/** The middle of a bucket's range (its exact value below 2048). */
export function valueOfBucket(b: number): number {
  if (b < SUB_BUCKETS) return b;
  const e = ((b - SUB_BUCKETS) >> 10) + 1;
  const low = (((b - SUB_BUCKETS) & (HALF - 1)) + HALF) * 2 ** e;
  return low + 2 ** (e - 1);
}

/** Bytes for `threads` rows of counts. */
export function latencyBufferBytes(threads: number): number {
  return threads * LATENCY_BUCKETS * Float64Array.BYTES_PER_ELEMENT;
}

/** One thread's row. A single writer per row: plain adds, no Atomics on the hot path. */
export class LatencyRecorder {
  private readonly counts: Float64Array;

  constructor(buffer: SharedArrayBuffer, row: number) {
    this.counts = new Float64Array(buffer, row * LATENCY_BUCKETS * Float64Array.BYTES_PER_ELEMENT, LATENCY_BUCKETS);
  }

  record(ns: number): void {
    this.counts[bucketOf(ns)]!++;
  }
}

/**
 * Reads every thread's row (as of now; a decision being counted meanwhile may or may not be in) and
 * subtracts `baseline` (the counts at the last reset), as an HDR histogram in nanoseconds.
 */
export function readLatency(buffer: SharedArrayBuffer, threads: number, baseline: Float64Array): Histogram {
  const h = buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 3 });
  const totals = snapshotLatency(buffer, threads);
  for (let b = 0; b < LATENCY_BUCKETS; b++) {
    const n = totals[b]! - baseline[b]!;
    if (n > 0) h.recordValueWithCount(valueOfBucket(b), n);
  }
  return h;
}

/** Current totals per bucket, summed over threads: the baseline a reset starts from. */
export function snapshotLatency(buffer: SharedArrayBuffer, threads: number): Float64Array {
  const all = new Float64Array(buffer, 0, threads * LATENCY_BUCKETS);
  const out = new Float64Array(LATENCY_BUCKETS);
  for (let t = 0; t < threads; t++) for (let b = 0; b < LATENCY_BUCKETS; b++) out[b]! += all[t * LATENCY_BUCKETS + b]!;
  return out;
}
