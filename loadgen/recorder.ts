/**
 * Everything a run counts about its measured requests: successful latencies in an HDR histogram (µs, 1 µs..60 s,
 * 3 significant digits), failures by kind, status codes and bytes. Preallocated, so recording allocates nothing.
 */
import { build as buildHistogram, type Histogram } from 'hdr-histogram-js';
import { ErrorKindIndex, ERROR_KINDS, classifyError } from './error-kind.js';

/** The histogram's ceiling: a longer latency is recorded as 60 s (the timeout is capped at 60 s to match). */
const MAX_LATENCY_US = 60_000_000;
/** Status codes are 100..599; one slot each keeps counting an array store. */
const STATUS_SLOTS = 600;

export class Recorder {
  /** Int32 counts: 2^31 samples per bucket is more than any run sends, and reads faster than a packed array. */
  readonly histogram: Histogram = buildHistogram({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_LATENCY_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
    useWebAssembly: false,
  });
  /** Exact sum of the recorded latencies, for the mean (the histogram's own mean is bucket-rounded). */
  sumUs = 0;
  readonly errors = new Float64Array(ERROR_KINDS.length);
  readonly statusCounts = new Float64Array(STATUS_SLOTS);
  bytes = 0;
  /** Measured requests settled: successes, failures, and requests given up unsent at the end. */
  requests = 0;
  /** Measured requests answered with a complete response (any status). */
  responses = 0;
  /** performance.now() of the last measured response, to extend the window over a slow drain. */
  lastResponseAt = 0;

  /** One settled request: `startedAt` is its intended (open loop) or actual (closed loop) send time. */
  record(status: number, bytes: number, err: Error | null, startedAt: number, now: number, closing: boolean): void {
    this.requests++;
    this.bytes += bytes;
    if (err !== null) {
      this.errors[classifyError(err, closing)]!++;
      return;
    }
    this.responses++;
    this.lastResponseAt = now;
    if (status < STATUS_SLOTS) this.statusCounts[status]!++;
    if (status >= 500) this.errors[ErrorKindIndex.status_5xx]!++;
    else if (status >= 400) this.errors[ErrorKindIndex.status_4xx]!++;
    else {
      const us = Math.round((now - startedAt) * 1000);
      const clamped = us < 1 ? 1 : us > MAX_LATENCY_US ? MAX_LATENCY_US : us;
      this.histogram.recordValue(clamped);
      this.sumUs += clamped;
    }
  }

  /** Requests that were due but never sent before the run gave up: they waited past the timeout. */
  recordUnsent(count: number): void {
    this.requests += count;
    this.errors[ErrorKindIndex.timeout]! += count;
  }
}
