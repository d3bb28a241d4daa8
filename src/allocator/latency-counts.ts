import type { Histogram } from 'hdr-histogram-js';

/**
 * Per-placement latency counts kept by the placement threads themselves, in shared memory.
 *
 * Recording a million latencies a second into the allocator's HDR histogram cost its thread more
 * than a tenth of its time (and a result column per task to carry the value across). Instead each
 * thread counts into buckets laid out as HDR's are at 3 significant digits (values below 2048
 * exact, then 1024 sub-buckets per power of two), with Atomics.add so that a reader can take the
 * counts with Atomics.exchange at any time without losing one. The allocator folds them into its
 * Histogram when it is read: a bucket's lowest value lands in the same HDR bucket as every value of
 * the bucket, so percentiles are the same as if each value had been recorded.
 */
const LINEAR = 2048;
const SUB = 1024;
/** Powers of two from 2^11 to 2^52 ns (weeks): nothing a timer reports is out of range. */
const OCTAVES = 42;
export const LATENCY_BUCKETS = LINEAR + OCTAVES * SUB;

export function allocateLatencyCounts(): SharedArrayBuffer {
  return new SharedArrayBuffer(LATENCY_BUCKETS * 4);
}

/** Bucket of a latency in ns (non-negative; fractions are dropped). */
export function latencyBucket(ns: number): number {
  if (ns < LINEAR) return ns > 0 ? ns | 0 : 0;
  const e = ns < 0x80000000 ? 31 - Math.clz32(ns) : Math.floor(Math.log2(ns));
  const sub = Math.floor(ns / 2 ** (e - 10)) - SUB;
  const i = LINEAR + (e - 11) * SUB + sub;
  return i < LATENCY_BUCKETS ? i : LATENCY_BUCKETS - 1;
}

/** Lowest value of a bucket. */
export function bucketValue(i: number): number {
  if (i < LINEAR) return i;
  const j = i - LINEAR;
  const e = 11 + Math.floor(j / SUB);
  return (SUB + (j % SUB)) * 2 ** (e - 10);
}

/** Takes every count recorded so far (leaving zeros) and records it into `h`. */
export function foldLatencyCounts(counts: Int32Array, h: Histogram): void {
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] === 0) continue;
    const n = Atomics.exchange(counts, i, 0);
    if (n > 0) h.recordValueWithCount(bucketValue(i), n);
  }
}
