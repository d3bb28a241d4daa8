/** Counting: errors by their stable code, statuses by class, latencies in µs within the histogram's range. */
import { describe, expect, it } from 'vitest';
import { ErrorKindIndex, TIMEOUT_CODE, classifyError } from '../../loadgen/error-kind.js';
import { Recorder } from '../../loadgen/recorder.js';

const coded = (code: string): Error => Object.assign(new Error('whatever the message says'), { code });

describe('loadgen recorder', () => {
  it('classifies transport failures by code, and anything unknown as other (or timeout once the run gave up)', () => {
    expect(classifyError(coded('ECONNREFUSED'), false)).toBe(ErrorKindIndex.connect_refused);
    for (const c of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_INFO']) expect(classifyError(coded(c), false)).toBe(ErrorKindIndex.reset);
    for (const c of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', TIMEOUT_CODE]) {
      expect(classifyError(coded(c), false)).toBe(ErrorKindIndex.timeout);
    }
    expect(classifyError(coded('UND_ERR_DESTROYED'), false)).toBe(ErrorKindIndex.other);
    expect(classifyError(coded('UND_ERR_DESTROYED'), true)).toBe(ErrorKindIndex.timeout);
    expect(classifyError(new Error('no code'), false)).toBe(ErrorKindIndex.other);
  });

  it('keeps error answers and failures out of the latency histogram, and clamps it to 1 µs..60 s', () => {
    const r = new Recorder();
    r.record(200, 10, null, 0, 1.5, false); // 1500 µs
    r.record(204, 0, null, 0, 0.0001, false); // under 1 µs: recorded as 1
    r.record(301, 5, null, 0, 120_000, false); // two minutes: recorded as 60 s
    r.record(404, 3, null, 0, 1, false);
    r.record(503, 4, null, 0, 1, false);
    r.record(0, 2, coded('ECONNRESET'), 0, 1, false);
    r.recordUnsent(3);
    expect(r.requests).toBe(9);
    expect(r.responses).toBe(5);
    expect(r.bytes).toBe(24);
    expect(r.histogram.totalCount).toBe(3);
    expect(r.histogram.minNonZeroValue).toBe(1);
    expect(r.histogram.maxValue).toBeGreaterThanOrEqual(59_900_000);
    expect(r.sumUs).toBe(1500 + 1 + 60_000_000);
    expect([...r.errors]).toEqual([0, 1, 3, 1, 1, 0]);
    expect(r.statusCounts[200]).toBe(1);
    expect(r.statusCounts[503]).toBe(1);
  });
});
