import { type JsHistogram, build } from 'hdr-histogram-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Allocator } from '../../src/allocator/allocator.js';
import { LATENCY_BUCKETS, bucketValue, foldLatencyCounts, latencyBucket } from '../../src/allocator/latency-counts.js';
import { nodes } from './helpers.js';

/** The allocator's histogram settings. */
const hist = (): JsHistogram => build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 3 }) as JsHistogram;

describe('latency counts', () => {
  it('put every value in a bucket whose lowest value HDR files in the same place', () => {
    const h = hist();
    const values: number[] = [];
    for (let v = 0; v < 5000; v++) values.push(v);
    for (let e = 14; e < 36; e++) for (const f of [1, 1.0004, 1.37, 1.5, 1.999]) values.push(Math.floor(2 ** e * f));
    values.push(60e9, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1);
    for (const v of values) {
      const i = latencyBucket(v);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(LATENCY_BUCKETS);
      const low = bucketValue(i);
      expect(low).toBeLessThanOrEqual(v);
      expect(h.lowestEquivalentValue(low)).toBe(h.lowestEquivalentValue(v));
    }
    // Fractions of a nanosecond (what a timer difference gives) are dropped, not rounded up.
    expect(latencyBucket(2047.9)).toBe(2047);
    expect(latencyBucket(-1)).toBe(0);
  });

  it('fold into the same percentiles as recording each value, and leave zeros behind', () => {
    const direct = hist();
    const folded = hist();
    const counts = new Int32Array(LATENCY_BUCKETS);
    let x = 12345;
    for (let k = 0; k < 50_000; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      // Mostly sub-microsecond, a tail to milliseconds.
      const v = k % 100 === 0 ? x % 5_000_000 : 200 + (x % 3000);
      direct.recordValue(v);
      Atomics.add(counts, latencyBucket(v), 1);
    }
    foldLatencyCounts(counts, folded);
    expect(folded.totalCount).toBe(direct.totalCount);
    for (const p of [0, 10, 50, 90, 99, 99.9, 100]) expect(folded.getValueAtPercentile(p)).toBe(direct.getValueAtPercentile(p));
    expect(counts.every((c) => c === 0)).toBe(true);
  });
});

describe('Allocator.placementLatencyNs', () => {
  let a: Allocator | null = null;
  afterEach(async () => {
    await a?.close();
    a = null;
  });

  it('counts each decision once, placed or not, across threads', async () => {
    a = await Allocator.create({ nodes: nodes(4, { cpus: 2 }), workers: 2, roundSize: 8 });
    const before = a.placementLatencyNs.totalCount;
    const tasks = Array.from({ length: 40 }, (_, i) => ({ id: `t${i}`, resources: { cpus: 0.5 } }));
    const r = await a.place(tasks);
    expect(r.assignments).toHaveLength(16);
    expect(r.unplaced).toHaveLength(24);
    const g = await a.placeGroup({ count: 5, resources: { cpus: 0.25 } });
    expect(g.placed).toBe(0);
    expect(a.placementLatencyNs.totalCount - before).toBe(45);
    a.placementLatencyNs.reset();
    expect(a.placementLatencyNs.totalCount).toBe(0);
  });
});
