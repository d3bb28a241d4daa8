import { build as buildHistogram } from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import { Allocator } from '../../src/allocator/allocator.js';
import { LATENCY_BUCKETS, LatencyRecorder, bucketOf, latencyBufferBytes, readLatency, valueOfBucket } from '../../src/allocator/latency-counts.js';
import { nodes } from './helpers.js';

describe('latency counts', () => {
  it('buckets are exact below 2048 ns and within 0.1% above, up to the clamp', () => {
    for (let v = 0; v < 2048; v++) expect(valueOfBucket(bucketOf(v))).toBe(v);
    for (const v of [2048, 2049, 4095, 4096, 123_456, 9_999_999, 2 ** 31, 2 ** 32 - 1]) {
      const b = bucketOf(v);
      expect(b).toBeGreaterThanOrEqual(2048);
      expect(b).toBeLessThan(LATENCY_BUCKETS);
      expect(Math.abs(valueOfBucket(b) - v) / v).toBeLessThan(0.001);
    }
    expect(bucketOf(2 ** 40)).toBe(LATENCY_BUCKETS - 1);
    expect(bucketOf(-5)).toBe(0);
    // Monotonic: a larger value never lands in an earlier bucket.
    let last = -1;
    for (let v = 0; v < 5_000_000; v += 997) {
      const b = bucketOf(v);
      expect(b).toBeGreaterThanOrEqual(last);
      last = b;
    }
  });

  it('percentiles from two threads rows match an HDR histogram of the same values', () => {
    const buf = new SharedArrayBuffer(latencyBufferBytes(2));
    const rows = [new LatencyRecorder(buf, 0), new LatencyRecorder(buf, 1)];
    const ref = buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 3 });
    let x = 12345;
    for (let i = 0; i < 50_000; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const v = (x % 1000) < 990 ? 300 + (x % 5000) : 40_000 + (x % 3_000_000);
      rows[i & 1]!.record(v);
      ref.recordValue(v);
    }
    const h = readLatency(buf, 2, new Float64Array(LATENCY_BUCKETS));
    expect(h.totalCount).toBe(50_000);
    for (const p of [50, 90, 99, 99.9, 100]) {
      const want = ref.getValueAtPercentile(p);
      expect(Math.abs(h.getValueAtPercentile(p) - want) / want).toBeLessThan(0.002);
    }
  });
});

describe('allocator latency', () => {
  it('counts one latency per decision across threads, and resets', async () => {
    const a = await Allocator.create({ nodes: nodes(20), workers: 2 });
    try {
      const r = await a.placeGroup({ count: 50, resources: { cpus: 0.1, mem: '64Mi' } });
      expect(r.placed).toBe(50);
      // An impossible group: decisions that fail are timed too.
      await a.placeGroup({ count: 3, resources: { cpus: 64 } });
      expect(a.placementLatency().totalCount).toBe(53);
      a.resetLatency();
      expect(a.placementLatency().totalCount).toBe(0);
      await a.place([{ id: 't1', resources: { cpus: 0.1 } }]);
      expect(a.placementLatency().totalCount).toBe(1);
      expect(a.placementLatency().maxValue).toBeGreaterThan(0);
    } finally {
      await a.close();
    }
  });
});
