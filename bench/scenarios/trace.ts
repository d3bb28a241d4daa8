import { build as buildHistogram } from 'hdr-histogram-js';
import { Allocator, type TaskRequest } from '../../src/allocator/allocator.js';
import type { PolicyName } from '../../src/placement/scoring/policy.js';
import { type BadRow, type TraceFormat, type TraceSubmission, readTrace } from '../trace/index.js';
import { auditTable } from '../lib/audit.js';
import { type Percentiles, percentilesUs } from '../lib/report.js';

export interface TraceRunOptions {
  file: string;
  format: TraceFormat;
  nodes: number;
  machineCpus: number;
  machineMemMiB: number;
  workers: number;
  selection: 'exact' | 'sampled';
  policy: PolicyName;
  sampleK: number;
  seed: number;
  /** Replay at this multiple of real time; undefined = as fast as possible. */
  speed?: number;
  limit?: number;
  batch: number;
}

export interface TraceRunResult {
  scenario: 'trace';
  format: TraceFormat;
  file: string;
  nodes: number;
  workers: number;
  selection: string;
  policy: string;
  speed: number | null;
  rows: number;
  skipped: number;
  submissions: number;
  badRows: number;
  badRowSamples: BadRow[];
  placed: number;
  unplaced: number;
  released: number;
  placementsPerSec: number;
  wallMs: number;
  latencyUs: Percentiles;
  queueingDelayUs: Percentiles;
  utilizationOverTime: { traceSec: number; cpus: number; mem: number; running: number }[];
  unplacedByCode: Record<string, number>;
  overcommittedNodes: number;
}

const UTIL_SAMPLES = 20;

/**
 * Replays a public trace's submissions in time order against a homogeneous cluster of the trace's
 * reference machine. Tasks with a known duration (alibaba) are released when trace time passes
 * their end, so utilisation over time is that of the trace, not of a cluster that only fills.
 * As fast as possible by default: trace time advances with each submission group; with --speed
 * the groups are paced at that multiple of real time, and queueing delay includes any lag.
 */
export async function runTrace(o: TraceRunOptions): Promise<TraceRunResult> {
  const trace = await readTrace(o.file, o.format, {
    machineCpus: o.machineCpus,
    machineMemMiB: o.machineMemMiB,
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
  });
  const nodes = [];
  for (let i = 0; i < o.nodes; i++) {
    nodes.push({
      id: `m-${i}`,
      resources: { cpus: o.machineCpus, mem: o.machineMemMiB, disk: '2Ti' },
      attributes: { zone: `z${i % 3}` },
    });
  }
  const alloc = await Allocator.create({ nodes, workers: o.workers, selection: o.selection, sampleK: o.sampleK, seed: o.seed });
  const queueing = buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: 3.6e12, numberOfSignificantValueDigits: 3 });
  const unplacedByCode: Record<string, number> = {};
  const utilizationOverTime: TraceRunResult['utilizationOverTime'] = [];
  // Ends of running tasks, as a sorted list consumed from the front (trace order makes it cheap).
  const ends: { at: number; id: string }[] = [];
  let placed = 0;
  let unplaced = 0;
  let released = 0;
  const subs = trace.submissions;
  const firstT = subs.length > 0 ? subs[0]!.time : 0;
  const lastT = subs.length > 0 ? subs[subs.length - 1]!.time : 0;
  const sampleEvery = Math.max(1, (lastT - firstT) / UTIL_SAMPLES);
  let nextSample = firstT;
  try {
    const t0 = performance.now();
    let i = 0;
    while (i < subs.length) {
      const now = subs[i]!.time;
      // Everything submitted at the same trace second goes together (chunked to the batch size).
      let j = i;
      while (j < subs.length && subs[j]!.time === now && j - i < o.batch) j++;
      const intended = o.speed ? t0 + ((now - firstT) * 1000) / o.speed : performance.now();
      if (o.speed) {
        const wait = intended - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
      released += releaseEnded(alloc, ends, now);
      if (now >= nextSample) {
        utilizationOverTime.push(sample(alloc, now - firstT));
        nextSample += sampleEvery;
      }
      const group = subs.slice(i, j);
      const r = await alloc.place(group.map(toTask));
      const decided = performance.now();
      for (let k = 0; k < group.length; k++) queueing.recordValue(Math.max(1, Math.round((decided - intended) * 1e6)));
      placed += r.assignments.length;
      unplaced += r.unplaced.length;
      for (const u of r.unplaced) unplacedByCode[u.code] = (unplacedByCode[u.code] ?? 0) + 1;
      const byId = new Map(group.map((s) => [s.taskId, s]));
      for (const a of r.assignments) {
        const s = byId.get(a.taskId)!;
        if (s.durationSec !== undefined) insertEnd(ends, { at: s.time + s.durationSec, id: a.taskId });
      }
      i = j;
    }
    const wallMs = performance.now() - t0;
    utilizationOverTime.push(sample(alloc, lastT - firstT));
    const audit = auditTable(alloc);
    return {
      scenario: 'trace',
      format: o.format,
      file: o.file,
      nodes: o.nodes,
      workers: o.workers,
      selection: o.selection,
      policy: o.policy,
      speed: o.speed ?? null,
      rows: trace.rows,
      skipped: trace.skipped,
      submissions: subs.length,
      badRows: trace.badRows.length,
      badRowSamples: trace.badRows.slice(0, 20),
      placed,
      unplaced,
      released,
      placementsPerSec: Math.round((placed / wallMs) * 1000),
      wallMs: Math.round(wallMs),
      latencyUs: percentilesUs(alloc.placementLatency()),
      queueingDelayUs: percentilesUs(queueing),
      utilizationOverTime,
      unplacedByCode,
      overcommittedNodes: audit.overcommittedNodes,
    };
  } finally {
    await alloc.close();
  }
}

function toTask(s: TraceSubmission): TaskRequest {
  const t: TaskRequest = {
    id: s.taskId,
    job: s.job,
    role: s.role,
    priority: s.priority,
    resources: { cpus: Math.max(0.001, s.cpus), mem: Math.max(1, s.memMiB), disk: s.diskMiB },
  };
  if (s.distinctHosts) t.constraints = [{ operator: 'distinct_hosts' }];
  return t;
}

function insertEnd(ends: { at: number; id: string }[], e: { at: number; id: string }): void {
  // Binary search insert: ends stay sorted by time.
  let lo = 0;
  let hi = ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ends[mid]!.at <= e.at) lo = mid + 1;
    else hi = mid;
  }
  ends.splice(lo, 0, e);
}

function releaseEnded(alloc: Allocator, ends: { at: number; id: string }[], now: number): number {
  let n = 0;
  while (n < ends.length && ends[n]!.at <= now) {
    alloc.release(ends[n]!.id);
    n++;
  }
  if (n > 0) ends.splice(0, n);
  return n;
}

function sample(alloc: Allocator, traceSec: number): TraceRunResult['utilizationOverTime'][number] {
  const a = auditTable(alloc);
  return {
    traceSec: Math.round(traceSec),
    cpus: Math.round(a.utilization.cpus * 10000) / 10000,
    mem: Math.round(a.utilization.mem * 10000) / 10000,
    running: alloc.stats().running,
  };
}
