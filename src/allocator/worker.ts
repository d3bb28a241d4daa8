import { readlinkSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import type { CompiledConstraints } from '../placement/constraints/compiled.js';
import { JobPlacementState } from '../placement/constraints/job-state.js';
import { PlacementQuery } from '../placement/query.js';
import { Placer, type SelectionValue } from '../placement/stack.js';
import { Status } from '../placement/status.js';
import { TableView } from '../table/view.js';
import type { RoundRequest, RoundResult, WorkerInit } from './messages.js';
import { LatencyRecorder } from './latency-counts.js';
import { Req, Res, TaskBufferView } from './task-buffer.js';

/**
 * The piscina worker: places the tasks of one sub-batch on the shared table. Views, the placer and
 * the query are built once per thread; a round allocates only its job states and result object.
 */
const init = workerData as WorkerInit;
const view = new TableView(init.table);
const buffers = init.tasks.map((d) => new TaskBufferView(d));
let placer: Placer | null = null;
const query = new PlacementQuery();
const csetCache = new Map<number, CompiledConstraints>();
// A replacement for a crashed thread reuses a row (modulo): its counts add to its predecessor's.
const row = Atomics.add(init.rowClaims, 0, 1) % init.threads;
const latency = new LatencyRecorder(init.latency, row);
// Node's global `performance` is a lazy getter: read through the global, every call paid for the
// getter and a global lookup that cannot be cached, ~1.5% of a placement thread's time.
const clock = performance;
Atomics.store(init.threadIds, row, osThreadId());

/** This thread's id in /proc (Linux), so per-thread CPU can be told apart; 0 elsewhere. */
function osThreadId(): number {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) ? tid : 0;
  } catch {
    return 0;
  }
}

function placerFor(): Placer {
  if (placer === null) {
    // Every thread gets the same seed: they sample disjoint shards, so the sequences do not collide,
    // and with one worker a seed reproduces placements exactly.
    placer = new Placer(view, { selection: init.selection as SelectionValue, sampleK: init.sampleK, seed: init.seed });
  }
  return placer;
}

/**
 * Tasks a thread claims at a time from a sub-batch's shared part: small enough that a slow stretch
 * (a full cluster's scans and diagnoses) is spread over the threads, large enough that the claim
 * (one atomic add) is noise.
 */
export const CLAIM_CHUNK = 64;

/**
 * Places tasks [lo, hi) of `tasks` with the jobs of this request; returns how many were placed.
 * A decision's latency runs from reading its task to writing its result: one clock read a decision,
 * each the end of one and the start of the next (a clock read is 20-50 ns here, 2-5% of a sampled
 * decision, and the two reads around place() were the only ones).
 */
function placeRange(p: Placer, tasks: TaskBufferView, jobs: JobPlacementState[], lo: number, hi: number): number {
  let placed = 0;
  const req = tasks.req;
  const res = tasks.res;
  const portsOut = tasks.ports;
  let t0 = clock.now();
  for (let i = lo; i < hi; i++) {
    const r = i * Req.STRIDE;
    const csetId = req[r + Req.CSET]!;
    const jobIdx = req[r + Req.JOB]!;
    query.set(
      req[r + Req.CPU]!,
      req[r + Req.MEM]!,
      req[r + Req.DISK]!,
      req[r + Req.GPU]!,
      req[r + Req.PORTS]!,
      req[r + Req.POLICY]!,
      csetId >= 0 ? csetCache.get(csetId)! : null,
      jobIdx >= 0 ? jobs[jobIdx]! : null,
    );
    const status = p.place(query, portsOut, req[r + Req.PORTS_AT]!);
    const o = i * Res.STRIDE;
    res[o + Res.ROW] = p.row;
    res[o + Res.STATUS] = status;
    res[o + Res.REASON] = p.reason;
    res[o + Res.DETAIL] = p.detail;
    const t1 = clock.now();
    latency.record(Math.round((t1 - t0) * 1e6));
    t0 = t1;
    if (status === Status.OK) placed++;
  }
  return placed;
}

/**
 * One request: its job-scoped tasks [lo, shared) first, then chunks claimed from its own shared
 * part and, once that is taken, from the other sub-batches of the round (messages.ts RoundRequest).
 */
export default function placeRound(msg: RoundRequest): RoundResult {
  const started = clock.now();
  const p = placerFor();
  for (const c of msg.csets) {
    const cached = csetCache.get(c.id);
    if (cached === undefined || cached.generation !== c.generation) csetCache.set(c.id, c);
  }
  const jobs: JobPlacementState[] = [];
  for (const j of msg.jobs) jobs.push(new JobPlacementState(csetCache.get(j.cset)!, j.rows, view));
  p.setOwnership(row % msg.ownerCount, msg.ownerCount);
  const tasks = buffers[msg.buffer]!;
  const claims = tasks.claims;
  const conflicts0 = p.conflicts;
  const retries0 = p.retries;
  let placed = placeRange(p, tasks, jobs, msg.lo, msg.shared);
  let decided = msg.shared - msg.lo;
  const ranges = msg.ranges;
  const subs = ranges.length >> 1;
  for (let n = 0; n < subs; n++) {
    let j = msg.sub + n;
    if (j >= subs) j -= subs;
    const end = ranges[2 * j + 1]!;
    for (;;) {
      const from = Atomics.add(claims, j, CLAIM_CHUNK);
      if (from >= end) break;
      const to = from + CLAIM_CHUNK < end ? from + CLAIM_CHUNK : end;
      placed += placeRange(p, tasks, jobs, from, to);
      decided += to - from;
    }
  }
  return { busyMs: clock.now() - started, placed, unplaced: decided - placed, conflicts: p.conflicts - conflicts0, retries: p.retries - retries0 };
}
