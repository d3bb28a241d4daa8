import { availableParallelism } from 'node:os';
import { build as buildHistogram, type Histogram } from 'hdr-histogram-js';
import {
  BorealisError,
  ClosedError,
  DuplicateTaskError,
  type FieldProblem,
  InvalidArgumentError,
  UnknownTaskError,
  isBorealisError,
} from '../api/errors.js';
import type { CompiledConstraints } from '../placement/constraints/compiled.js';
import { ConstraintCompiler, type ConstraintSpec } from '../placement/constraints/compile.js';
import { POLICY_NAMES, type PolicyName, policyFromName } from '../placement/scoring/policy.js';
import { SELECTION_NAMES, Selection } from '../placement/stack.js';
import { Reason, Status, reasonCode } from '../placement/status.js';
import { type ResourceInput, parseRequest } from '../resources/vector.js';
import { chargeRow, releaseRow } from '../table/commit.js';
import { NodeState, type TableLimits } from '../table/layout.js';
import { NodeTable, type NodeSpec } from '../table/node-table.js';
import type { RoundJob, RoundRequest } from './messages.js';
import { LATENCY_BUCKETS, latencyBufferBytes, readLatency, snapshotLatency } from './latency-counts.js';
import { PlacementPool, ROUNDS_IN_FLIGHT } from './pool.js';
import { type Queued, PendingQueue } from './queue.js';
import { UnplacedCode, type UnplacedDescription, describeUnplaced } from './reasons.js';
import { Req, Res, TaskBufferView, allocateTaskBuffer } from './task-buffer.js';
import { definedOnly } from '../util/defined-only.js';

export interface AllocatorOptions {
  nodes?: NodeSpec[];
  /** Placement threads; one per core by default. */
  workers?: number;
  selection?: (typeof SELECTION_NAMES)[number];
  /** Candidates per sampled decision. */
  sampleK?: number;
  seed?: number;
  /** Policy for tasks that name none. */
  policy?: PolicyName;
  /** Tasks per worker per round. */
  roundSize?: number;
  limits?: Partial<TableLimits>;
}

const DEFAULTS = {
  selection: 'sampled' as const,
  // k = 4: most of the packing quality of exact at a few probes per decision (see README numbers).
  sampleK: 4,
  seed: 1,
  policy: 'binpack' as PolicyName,
  // 2048 tasks keep a thread busy ~1 ms at sampled speeds, so hand-off costs stay under a few %.
  roundSize: 2048,
};

/** What a task and a task group both describe: the shape of one instance and where it queues. */
export interface TaskShapeRequest {
  /** Job key: instances of a job share limit / distinct-hosts accounting. */
  job?: string;
  /** DRF role (Mesos role / Aurora role). */
  role?: string;
  /** Higher is placed first. */
  priority?: number;
  resources: ResourceInput;
  /** Treated as immutable once passed in: instances sharing one array are compiled once. */
  constraints?: ConstraintSpec[];
  policy?: PolicyName;
}

/** A task as the master hands it to placement. */
export interface TaskRequest extends TaskShapeRequest {
  id: string;
}

export interface Assignment {
  taskId: string;
  nodeId: string;
  ports: number[];
}

export interface Unplaced extends UnplacedDescription {
  taskId: string;
}

export interface PlaceResult {
  assignments: Assignment[];
  unplaced: Unplaced[];
}

export interface AllocatorStats {
  placed: number;
  unplaced: number;
  released: number;
  rounds: number;
  conflicts: number;
  retries: number;
  /** Tasks put back in the queue after losing every commit race for rows they fit (then placed in a later round). */
  requeued: number;
  /** Time placement threads spent on rounds, summed over threads (ms). */
  workerBusyMs: number;
  pending: number;
  running: number;
}

/**
 * A queued unit of work: one task (units 1, group null), or a slice of a task group (instances
 * [start, start + units) of `group`, all identical).
 */
interface PendingTask extends Queued {
  id: string;
  group: GroupState | null;
  start: number;
  jobKey: string;
  cpu: number;
  mem: number;
  disk: number;
  gpu: number;
  ports: number;
  policy: number;
  cset: CompiledConstraints | null;
  call: PlaceCall;
  /** Times this item came back because it lost every race for the rows it fits (see MAX_REQUEUES). */
  requeues: number;
  /** A task's entry in Allocator.tasks, filled in where it is placed (null for a group's items). */
  held: Held | null;
}

/** Many identical instances placed as one request (Nomad's task group, Aurora's job instances). */
export interface TaskGroupRequest extends TaskShapeRequest {
  /** Instances, 1..MAX_GROUP_INSTANCES. */
  count: number;
}

/** Where a group's instances went, by instance index. Instances are addressed as (handle, index). */
export interface GroupResult {
  handle: number;
  count: number;
  placed: number;
  /** Node id per instance; null where it was not placed. */
  nodes: (string | null)[];
  /**
   * Ports of instance i are ports[i * portsPerInstance ..]. The allocator's own record, which
   * release gives back: read it, do not write to it or transfer its buffer.
   */
  ports: Int32Array;
  portsPerInstance: number;
  unplaced: (UnplacedDescription & { index: number })[];
}

export const MAX_GROUP_INSTANCES = 10_000_000;

/**
 * An instance's slot in GroupState.slots: the row it holds (>= 0, placed), or one of these. One
 * column for both keeps a group to one typed array (see GroupState).
 */
const enum Instance {
  PENDING = -1,
  UNPLACED = -2,
  RELEASED = -3,
}

interface GroupState {
  handle: number;
  count: number;
  role: string;
  jobKey: string;
  cpu: number;
  mem: number;
  disk: number;
  gpu: number;
  ports: number;
  cset: CompiledConstraints | null;
  /**
   * Each instance's row, or its Instance state. One array for both, not two: a group lives until
   * released, and every object it keeps is copied by each young-generation collection it survives
   * (per-group state was ~1.6 KB of heap, now ~0.5 without ports).
   */
  slots: Int32Array;
  /** `ports` a instance (the result's ports; its own buffer, so a caller can never reach `slots`). */
  portsOut: Int32Array;
  /** Until the group resolves: what its result will list as unplaced. */
  unplaced: (UnplacedDescription & { index: number })[];
  remaining: number;
  placed: number;
  started: number;
  /** Until the group resolves (then NO_RESOLVE: a kept resolver would keep the result alive with it). */
  resolve: (r: GroupResult) => void;
}

const NO_RESOLVE = (): void => {};
const NO_UNPLACED: (UnplacedDescription & { index: number })[] = Object.freeze([]) as unknown as (UnplacedDescription & { index: number })[];

/** Ports of instance i of a group. */
function portsOf(g: GroupState, i: number): Int32Array {
  return g.portsOut.subarray(i * g.ports, (i + 1) * g.ports);
}

/** The ports of every group without any: nothing to read, write or give back. */
const NO_PORTS = new Int32Array(0);

/** The per-instance charge of a task, slice, group or holding: what refund() gives back. */
interface Charged {
  role: string;
  cpu: number;
  mem: number;
  disk: number;
  gpu: number;
}

interface PlaceCall {
  remaining: number;
  started: number;
  result: PlaceResult;
  resolve: (r: PlaceResult) => void;
}

/**
 * What a queue item carries as its call when nothing waits on it: a group (it resolves through its GroupState) or
 * an adopted task. Frozen: shared by every such item, so nothing may write to it.
 */
const NO_CALL: PlaceCall = Object.freeze({
  remaining: 0,
  started: 0,
  result: Object.freeze({ assignments: Object.freeze([]) as unknown as Assignment[], unplaced: Object.freeze([]) as unknown as Unplaced[] }),
  resolve: () => {},
});

/** A task the allocator knows: pending (row -1, no node, no ports) until placed, then where it runs. */
interface Held {
  row: number;
  nodeId: string;
  role: string;
  jobKey: string;
  cpu: number;
  mem: number;
  disk: number;
  gpu: number;
  ports: number[];
  dominant: number;
}

interface JobState {
  cset: CompiledConstraints;
  /** row -> instances held there */
  rows: Map<number, number>;
  /** True while a round in flight holds tasks of this job: the next round must not race it. */
  inFlight: boolean;
}

interface Round {
  index: number;
  /** Items in buffer order; item k occupies buffer rows [pos[k], pos[k] + units). */
  tasks: PendingTask[];
  pos: number[];
  jobs: JobState[];
  promise: Promise<void>;
}

/**
 * The sharded allocator: the library the master calls to place tasks.
 *
 * It owns the shared node table (topology writes happen here, on the caller's thread) and a pool
 * of placement threads. `place()` validates a batch completely (nothing is queued if any task is
 * wrong), queues it by priority and DRF, and a pump cuts the queue into rounds: each round is
 * split into one sub-batch per thread, each thread owning an interleaved set of shards, and all
 * threads commit into the same table with the optimistic protocol of src/table/commit.ts.
 * Up to ROUNDS_IN_FLIGHT rounds may be in flight: while threads place one, this thread prepares
 * the next, and a thread that finishes its part early starts on a later round instead of waiting
 * for the slowest part of the current one. Jobs with
 * limit / distinct-hosts constraints are kept to one sub-batch of one round at a time, because
 * their feasibility depends on where their other instances went.
 */
export class Allocator {
  readonly table: NodeTable;
  readonly workers: number;
  private readonly opts: Required<Omit<AllocatorOptions, 'nodes' | 'limits' | 'workers'>>;
  /** The policy of a task that names none (opts.policy, looked up once). */
  private readonly defaultPolicy: number;
  private readonly pool: PlacementPool;
  private readonly buffers: TaskBufferView[];
  private readonly compiler: ConstraintCompiler;
  private readonly queue: PendingQueue<PendingTask>;
  /**
   * Every task the allocator knows, by id: pending (row -1) or placed. One entry from validation
   * on, filled in place when the task is placed: a lookup and a write per task, none to place it
   * (with a million entries each costs a cache miss or two).
   */
  private readonly tasks = new Map<string, Held>();
  private running = 0;
  /** Units waiting out a backoff before they go back in the queue (backOff), and their timers. */
  private backingOff = 0;
  private readonly backoffTimers = new Set<NodeJS.Timeout>();
  private readonly groups = new Map<number, GroupState>();
  private nextGroup = 1;
  private readonly cancelled = new Set<string>();
  private readonly jobs = new Map<string, JobState>();
  /** Compiled constraint sets by the array object they came from (see validate). */
  private readonly csetMemo = new WeakMap<object, CompiledConstraints>();
  /** DRF accounting: per role, what it holds per dimension (committed and in flight). */
  private readonly roleUse = new Map<string, Float64Array>();
  private readonly totals = new Float64Array(4);
  /** Nodes removed while rounds were in flight: their rows are emptied once those rounds finish. */
  private readonly removing = new Set<string>();
  private inFlight: Round[] = [];
  private pumping = false;
  private closed = false;
  private roundCounter = 0;
  private readonly counters = { placed: 0, unplaced: 0, released: 0, rounds: 0, conflicts: 0, retries: 0, requeued: 0, workerBusyMs: 0 };
  /** Placement threads count each decision's latency here (latency-counts.ts). */
  private readonly latencyBuffer: SharedArrayBuffer;
  /** OS thread id of each placement thread (WorkerInit.threadIds). */
  private readonly threadIds: Int32Array;
  /** Counts at the last resetLatency(). */
  private latencyBaseline: Float64Array = new Float64Array(LATENCY_BUCKETS);
  /** Per place() call: from the call to the last decision, queueing and hand-off included (ns). */
  readonly batchLatencyNs: Histogram;

  private constructor(opts: AllocatorOptions) {
    const o = { ...DEFAULTS, ...definedOnly(opts) };
    if (!SELECTION_NAMES.includes(o.selection)) {
      throw new InvalidArgumentError(`selection must be one of ${SELECTION_NAMES.join(', ')}, got ${JSON.stringify(o.selection)}`);
    }
    if (policyFromName(o.policy) < 0) {
      throw new InvalidArgumentError(`policy must be one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(o.policy)}`);
    }
    for (const k of ['sampleK', 'roundSize'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new InvalidArgumentError(`${k} must be a positive integer, got ${o[k]}`);
    }
    const workers = opts.workers ?? availableParallelism();
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
      throw new InvalidArgumentError(`workers must be an integer in 1..256, got ${workers}`);
    }
    this.workers = workers;
    this.latencyBuffer = new SharedArrayBuffer(latencyBufferBytes(workers));
    this.threadIds = new Int32Array(new SharedArrayBuffer(4 * workers));
    this.opts = { selection: o.selection, sampleK: o.sampleK, seed: o.seed, policy: o.policy, roundSize: o.roundSize };
    this.defaultPolicy = policyFromName(o.policy);
    this.table = new NodeTable(opts.limits);
    this.compiler = new ConstraintCompiler(this.table.interner);
    this.queue = new PendingQueue<PendingTask>((role) => this.dominantShare(role));
    const capacity = o.roundSize * workers;
    // One buffer per round in flight: rounds never share rows.
    // Room for 8 ports a task on average, and never less than one node's whole span, so any task
    // whose ports fit a node also fits an empty round.
    const portsCapacity = Math.max(capacity * 8, this.table.limits.maxPortSpan);
    const data = Array.from({ length: ROUNDS_IN_FLIGHT }, () => allocateTaskBuffer(capacity, portsCapacity, workers));
    this.buffers = data.map((d) => new TaskBufferView(d));
    for (const spec of opts.nodes ?? []) this.addNode(spec);
    this.pool = new PlacementPool(workers, {
      table: this.table.buffers,
      tasks: data,
      selection: o.selection === 'exact' ? Selection.EXACT : Selection.SAMPLED,
      sampleK: o.sampleK,
      seed: o.seed,
      threads: workers,
      latency: this.latencyBuffer,
      rowClaims: new Int32Array(new SharedArrayBuffer(4)),
      threadIds: this.threadIds,
    });
    this.batchLatencyNs = buildHistogram({ lowestDiscernibleValue: 1, highestTrackableValue: 600e9, numberOfSignificantValueDigits: 3 });
  }

  static async create(opts: AllocatorOptions = {}): Promise<Allocator> {
    return new Allocator(opts);
  }

  /**
   * Per-decision placement latency (ns) inside the placement threads (from reading a task to writing its result: select + commit) since the
   * last resetLatency(), as a fresh HDR histogram (built on demand: not for every decision).
   */
  placementLatency(): Histogram {
    return readLatency(this.latencyBuffer, this.workers, this.latencyBaseline);
  }

  /** OS thread ids of the placement threads that have started (Linux only: empty elsewhere). */
  placementThreadIds(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.workers; i++) {
      const tid = Atomics.load(this.threadIds, i);
      if (tid > 0) out.push(tid);
    }
    return out;
  }

  /** Starts both latency histograms afresh (placement and per-call). */
  resetLatency(): void {
    this.latencyBaseline = snapshotLatency(this.latencyBuffer, this.workers);
    this.batchLatencyNs.reset();
  }

  // ---- topology -------------------------------------------------------------------------------

  addNode(spec: NodeSpec): void {
    this.assertOpen();
    this.table.addNode(spec);
    const s = this.table.snapshot(spec.id);
    this.totals[0] = this.totals[0]! + s.capacity.cpus;
    this.totals[1] = this.totals[1]! + s.capacity.mem;
    this.totals[2] = this.totals[2]! + s.capacity.disk;
    this.totals[3] = this.totals[3]! + s.capacity.gpus;
    this.kick();
  }

  /**
   * Removes a node. Tasks it held are released and returned (the caller decides: lost, reschedule).
   * Placements racing with the removal are re-queued when their round finishes.
   */
  removeNode(id: string): string[] {
    this.assertOpen();
    const s = this.table.snapshot(id);
    this.table.setState(id, NodeState.DOWN);
    const lost: string[] = [];
    for (const [taskId, h] of this.tasks) if (h.row >= 0 && h.nodeId === id) lost.push(taskId);
    for (const taskId of lost) this.release(taskId);
    const row = this.table.rowOf(id);
    for (const g of this.groups.values()) {
      for (let i = 0; i < g.count; i++) {
        if (g.slots[i] === row) {
          this.releaseGroupInstance(g, i);
          lost.push(`${g.handle}:${i}`);
        }
      }
    }
    this.totals[0] = this.totals[0]! - s.capacity.cpus;
    this.totals[1] = this.totals[1]! - s.capacity.mem;
    this.totals[2] = this.totals[2]! - s.capacity.disk;
    this.totals[3] = this.totals[3]! - s.capacity.gpus;
    if (this.inFlight.length > 0) this.removing.add(id);
    else this.table.removeNode(id);
    return lost;
  }

  /** No new placements on the node; what it runs stays. */
  drainNode(id: string): void {
    this.assertOpen();
    this.table.setState(id, NodeState.DRAINING);
  }

  /** Back to taking placements (after a drain, or when a lost agent returns). */
  activateNode(id: string): void {
    this.assertOpen();
    this.table.setState(id, NodeState.UP);
    this.kick();
  }

  /** Unreachable: keeps its tasks' accounting, takes nothing new. */
  markNodeDown(id: string): void {
    this.assertOpen();
    this.table.setState(id, NodeState.DOWN);
  }

  // ---- placement ------------------------------------------------------------------------------

  /**
   * Places a batch. Resolves when every task has an assignment or a reason. Throws (rejects) a
   * BorealisError, with every problem by path, if any task is invalid: then nothing is queued.
   * A task that fits a node but lost every race for it to other placement threads is put back
   * (MAX_REQUEUES times, 1 to 128 ms apart) before it is reported: rare, but it delays the call.
   */
  place(tasks: readonly TaskRequest[]): Promise<PlaceResult> {
    try {
      this.assertOpen();
      const call: PlaceCall = {
        remaining: tasks.length,
        started: performance.now(),
        result: { assignments: [], unplaced: [] },
        resolve: () => {},
      };
      const parsed = this.validate(tasks, call);
      const promise = new Promise<PlaceResult>((resolve) => {
        call.resolve = resolve;
      });
      if (parsed.length === 0) {
        call.resolve(call.result);
        return promise;
      }
      for (const t of parsed) this.queue.push(t);
      this.kick();
      return promise;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private validate(tasks: readonly TaskRequest[], call: PlaceCall): PendingTask[] {
    if (!Array.isArray(tasks)) throw new InvalidArgumentError('place() takes an array of tasks');
    const problems: FieldProblem[] = [];
    const out: PendingTask[] = [];
    // Ids are entered as pending as they validate (a repeat within the batch then shows as a
    // duplicate) and taken out again if anything in the batch is refused.
    const added: string[] = [];
    let duplicate: string | null = null;
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i]!;
      if (t === null || typeof t !== 'object') {
        problems.push({ path: `tasks[${i}]`, message: 'must be an object' });
        continue;
      }
      if (typeof t.id !== 'string' || t.id === '') {
        problems.push({ path: `tasks[${i}].id`, message: 'must be a non-empty string' });
        continue;
      }
      if (this.tasks.has(t.id)) {
        duplicate ??= t.id;
        problems.push({ path: `tasks[${i}].id`, message: `duplicate task id ${JSON.stringify(t.id)}` });
      }
      for (const k in t) {
        if (!TASK_FIELDS.has(k)) problems.push({ path: `tasks[${i}].${k}`, message: 'unknown field' });
      }
      const pending = this.checkShape(t, i, problems, t.id, call);
      if (pending === null || problems.length > 0) continue;
      out.push(pending);
      const held: Held = { row: -1, nodeId: '', role: pending.role, jobKey: pending.jobKey, cpu: pending.cpu, mem: pending.mem, disk: pending.disk, gpu: pending.gpu, ports: NO_HELD_PORTS, dominant: pending.dominant };
      pending.held = held;
      this.tasks.set(t.id, held);
      added.push(t.id);
    }
    if (problems.length > 0) {
      for (const id of added) this.tasks.delete(id);
      if (duplicate !== null && problems.length === 1) throw new DuplicateTaskError(duplicate);
      throw invalidShapes('invalid tasks', problems);
    }
    return out;
  }

  /**
   * Checks everything of a task but its id (a task group's shape, or one task's): problems go to `problems`,
   * under `tasks[i].` when `i` >= 0 and at the top level for a group. Returns its queue item, or null.
   * Field paths are built only when something is wrong: this runs once per task.
   */
  private checkShape(t: TaskShapeRequest, i: number, problems: FieldProblem[], id: string, call: PlaceCall): PendingTask | null {
    const before = problems.length;
    if (t.priority !== undefined && (!Number.isInteger(t.priority) || Math.abs(t.priority) > 1e9)) {
      problems.push({ path: fieldPath(i, 'priority'), message: 'must be an integer' });
    }
    if (t.role !== undefined && (typeof t.role !== 'string' || t.role === '')) {
      problems.push({ path: fieldPath(i, 'role'), message: 'must be a non-empty string' });
    }
    if (t.job !== undefined && (typeof t.job !== 'string' || t.job === '')) {
      problems.push({ path: fieldPath(i, 'job'), message: 'must be a non-empty string' });
    }
    let policy = this.defaultPolicy;
    if (t.policy !== undefined) {
      policy = policyFromName(t.policy);
      if (policy < 0) problems.push({ path: fieldPath(i, 'policy'), message: `must be one of ${POLICY_NAMES.join(', ')}` });
    }
    let r;
    let cset: CompiledConstraints | null = null;
    try {
      r = parseRequest(t.resources, 'resources');
    } catch (err) {
      if (!isBorealisError(err)) throw err;
      problems.push(...problemsUnder(err, i, 'resources'));
    }
    try {
      // Instances of a job share one constraints array: compile it once, not once per task.
      const memo = t.constraints !== undefined && t.constraints !== null && typeof t.constraints === 'object' ? this.csetMemo.get(t.constraints) : undefined;
      if (memo !== undefined) cset = memo;
      else {
        cset = this.compiler.compile(t.constraints, 'constraints');
        if (cset !== null) this.csetMemo.set(t.constraints!, cset);
      }
    } catch (err) {
      if (!isBorealisError(err)) throw err;
      problems.push(...problemsUnder(err, i, 'constraints'));
    }
    if (cset?.jobScoped && t.job === undefined) {
      problems.push({ path: fieldPath(i, 'job'), message: 'is required with limit or distinct_hosts constraints' });
    }
    if (r === undefined || problems.length > before) return null;
    // One literal, fields in one order, for tasks and groups alike: the queue's hot loops see one shape.
    return {
      id,
      jobKey: t.job ?? '',
      role: t.role ?? 'default',
      priority: t.priority ?? 0,
      dominant: this.dominantOf(r.cpus, r.mem, r.disk, r.gpus),
      cpu: r.cpus,
      mem: r.mem,
      disk: r.disk,
      gpu: r.gpus,
      ports: r.ports,
      policy,
      cset,
      call,
      // A task; placeGroup makes it its group's item (units, group) once the group state exists.
      units: 1,
      group: null,
      start: 0,
      requeues: 0,
      held: null,
    };
  }

  /**
   * Places `count` identical instances as one request: validated once, queued as one item (cut into
   * slices as rounds take it), results in typed arrays. No object per instance on the way in or
   * out, which is what lets one thread feed a million placements a second. Resolves when every
   * instance has a node or a reason; rejects (nothing queued) if the request is invalid.
   */
  placeGroup(g: TaskGroupRequest): Promise<GroupResult> {
    try {
      this.assertOpen();
      if (g === null || typeof g !== 'object') throw new InvalidArgumentError('placeGroup() takes a task group object');
      if (!Number.isInteger(g.count) || g.count < 1 || g.count > MAX_GROUP_INSTANCES) {
        throw new InvalidArgumentError(`count must be an integer in 1..${MAX_GROUP_INSTANCES}, got ${String(g.count)}`, [
          { path: 'count', message: `must be an integer in 1..${MAX_GROUP_INSTANCES}` },
        ]);
      }
      for (const k of Object.keys(g)) {
        if (!GROUP_FIELDS.has(k)) throw new InvalidArgumentError(`unknown field ${k}`, [{ path: k, message: 'unknown field' }]);
      }
      const problems: FieldProblem[] = [];
      const t = this.checkShape(g, -1, problems, '', NO_CALL);
      if (t === null) throw invalidShapes('invalid task group', problems);
      const handle = this.nextGroup++;
      let resolve!: (r: GroupResult) => void;
      const promise = new Promise<GroupResult>((r) => {
        resolve = r;
      });
      const n = g.count;
      const gs: GroupState = {
        handle,
        count: n,
        role: t.role,
        jobKey: t.jobKey,
        cpu: t.cpu,
        mem: t.mem,
        disk: t.disk,
        gpu: t.gpu,
        ports: t.ports,
        cset: t.cset,
        slots: new Int32Array(n).fill(Instance.PENDING),
        portsOut: t.ports > 0 ? new Int32Array(n * t.ports) : NO_PORTS,
        unplaced: [],
        remaining: n,
        placed: 0,
        started: performance.now(),
        resolve,
      };
      this.groups.set(handle, gs);
      t.units = n;
      t.group = gs;
      this.queue.push(t);
      this.kick();
      return promise;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Gives one placed instance of a group back. */
  releaseInstance(handle: number, index: number): void {
    this.assertOpen();
    const g = this.groups.get(handle);
    if (!g || !Number.isInteger(index) || index < 0 || index >= g.count || g.slots[index]! < 0) {
      throw new UnknownTaskError(`${handle}:${index}`);
    }
    this.releaseGroupInstance(g, index);
    this.kick();
  }

  /** Gives back every placed instance of a group and forgets it. */
  releaseGroup(handle: number): void {
    this.assertOpen();
    const g = this.groups.get(handle);
    if (!g) throw new UnknownTaskError(`group ${handle}`);
    for (let i = 0; i < g.count; i++) if (g.slots[i]! >= 0) this.releaseGroupInstance(g, i);
    if (g.remaining === 0) this.groups.delete(handle);
    this.kick();
  }

  private releaseGroupInstance(g: GroupState, i: number): void {
    const row = g.slots[i]!;
    this.refund(g, row, portsOf(g, i));
    this.dropJobRow(g.jobKey, row);
    g.slots[i] = Instance.RELEASED;
    this.running--;
    this.counters.released++;
  }

  /** Undoes one committed instance: its row gets the resources and ports back, its role stops paying. */
  private refund(s: Charged, row: number, ports: Int32Array | readonly number[]): void {
    releaseRow(this.table.view, row, s.cpu, s.mem, s.disk, s.gpu, ports);
    this.chargeRole(s.role, -s.cpu, -s.mem, -s.disk, -s.gpu);
  }

  /** One instance of the job left `row` (limit / distinct-hosts accounting). */
  private dropJobRow(jobKey: string, row: number): void {
    const job = jobKey === '' ? undefined : this.jobs.get(jobKey);
    if (!job) return;
    const n = (job.rows.get(row) ?? 0) - 1;
    if (n > 0) job.rows.set(row, n);
    else job.rows.delete(row);
  }

  /**
   * Charges a task that already runs on a node — found there by reconciliation after a master
   * restart — with the exact ports it was launched with, as if this allocator had placed it: it
   * counts in its role's DRF share and in its job's limit / distinct-hosts accounting, and
   * release() gives it back. The task runs whatever the table thinks, so adoption never refuses
   * for lack of room; a row it over-fills simply takes nothing new until tasks leave. Ports
   * outside the node's ranges or already marked are not charged (and not freed on release).
   */
  adopt(task: TaskRequest, nodeId: string, ports: readonly number[]): void {
    this.assertOpen();
    const row = this.table.rowOf(nodeId); // before validate(), which enters the id as known
    const t = this.validate([task], NO_CALL)[0]!;
    const h = t.held!;
    h.ports = chargeRow(this.table.view, row, t.cpu, t.mem, t.disk, t.gpu, ports);
    h.nodeId = nodeId;
    h.row = row;
    this.running++;
    this.chargeRole(t.role, t.cpu, t.mem, t.disk, t.gpu);
    if (t.cset?.jobScoped) addJobRow(this.jobState(t.jobKey, t.cset), row);
  }

  /**
   * Gives a task's resources back. Unknown ids are refused (a double release would corrupt the
   * table's accounting).
   */
  release(taskId: string): void {
    this.assertOpen();
    const h = this.tasks.get(taskId);
    if (h === undefined || h.row < 0) throw new UnknownTaskError(taskId);
    this.tasks.delete(taskId);
    this.running--;
    this.refund(h, h.row, h.ports);
    this.dropJobRow(h.jobKey, h.row);
    this.counters.released++;
    this.kick();
  }

  /** Withdraws a task that is still pending. Returns false if it is not pending. */
  cancel(taskId: string): boolean {
    const h = this.tasks.get(taskId);
    if (h === undefined || h.row >= 0) return false;
    this.cancelled.add(taskId);
    return true;
  }

  /** Where a placed task is, or undefined. */
  assignmentOf(taskId: string): Assignment | undefined {
    const h = this.tasks.get(taskId);
    return h !== undefined && h.row >= 0 ? { taskId, nodeId: h.nodeId, ports: [...h.ports] } : undefined;
  }

  stats(): AllocatorStats {
    return { ...this.counters, pending: this.queue.units + this.backingOff, running: this.running };
  }

  /** Per-task assignments, by node id (for audits). */
  tasksOn(nodeId: string): string[] {
    const out: string[] = [];
    for (const [taskId, h] of this.tasks) if (h.row >= 0 && h.nodeId === nodeId) out.push(taskId);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // What waits out a backoff stays unsettled, like everything still queued: the allocator is gone.
    for (const timer of this.backoffTimers) clearTimeout(timer);
    this.backoffTimers.clear();
    await Promise.allSettled(this.inFlight.map((r) => r.promise));
    await this.pool.close();
  }

  // ---- DRF accounting -------------------------------------------------------------------------

  private dominantOf(cpu: number, mem: number, disk: number, gpu: number): number {
    const t = this.totals;
    let d = 0;
    if (t[0]! > 0) d = Math.max(d, cpu / t[0]!);
    if (t[1]! > 0) d = Math.max(d, mem / t[1]!);
    if (t[2]! > 0) d = Math.max(d, disk / t[2]!);
    if (t[3]! > 0) d = Math.max(d, gpu / t[3]!);
    return d;
  }

  private dominantShare(role: string): number {
    const u = this.roleUse.get(role);
    return u ? this.dominantOf(u[0]!, u[1]!, u[2]!, u[3]!) : 0;
  }

  private chargeRole(role: string, cpu: number, mem: number, disk: number, gpu: number): void {
    let u = this.roleUse.get(role);
    if (!u) {
      u = new Float64Array(4);
      this.roleUse.set(role, u);
    }
    u[0] = u[0]! + cpu;
    u[1] = u[1]! + mem;
    u[2] = u[2]! + disk;
    u[3] = u[3]! + gpu;
  }

  /** Per-role dominant shares right now (committed and in flight), for metrics and tests. */
  roleShares(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const role of this.roleUse.keys()) out[role] = this.dominantShare(role);
    return out;
  }

  // ---- the pump -------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('allocator');
  }

  private kick(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    setImmediate(() => {
      this.pump().catch((err: unknown) => {
        // A failed round is a bug or a dead worker: fail every waiting call rather than hang.
        this.failAll(err);
      });
    });
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closed) {
        if (this.queue.size > 0 && this.inFlight.length < ROUNDS_IN_FLIGHT) {
          const round = this.startRound();
          if (round !== null) {
            this.inFlight.push(round);
            continue;
          }
        }
        const oldest = this.inFlight[0];
        if (oldest === undefined) break;
        await oldest.promise;
        this.inFlight.shift();
        this.finishRound(oldest);
        if (this.inFlight.length === 0) this.flushRemovals();
      }
    } finally {
      this.pumping = false;
    }
    if (this.queue.size > 0 && !this.closed && this.inFlight.length === 0) this.kick();
  }

  private startRound(): Round | null {
    const index = this.roundCounter++;
    const buf = this.buffers[index % ROUNDS_IN_FLIGHT]!;
    const W = this.workers;
    const cap = buf.data.capacity;
    let portsBudget = buf.data.portsCapacity;
    const roundJobs = new Map<string, JobState>();
    const taken = this.queue.take(
      cap,
      (t) => {
        if (t.group === null && this.cancelled.size > 0 && this.cancelled.has(t.id)) return true;
        const ports = t.ports * t.units;
        if (ports > portsBudget) return false;
        if (t.cset?.jobScoped && !roundJobs.has(t.jobKey)) {
          if (this.jobs.get(t.jobKey)?.inFlight) return false;
          roundJobs.set(t.jobKey, this.jobState(t.jobKey, t.cset));
        }
        portsBudget -= ports;
        this.chargeRole(t.role, t.cpu * t.units, t.mem * t.units, t.disk * t.units, t.gpu * t.units);
        return true;
      },
      splitSlice,
      joinSlice,
      // A group is taken in parts when the round's port budget cannot hold all of it.
      (t) => (t.ports > 0 ? Math.floor(portsBudget / t.ports) : t.units),
    );
    // Cancelled tasks leave here, before they reach a worker.
    const tasks: PendingTask[] = [];
    for (const t of taken) {
      if (t.group === null && this.cancelled.size > 0 && this.cancelled.delete(t.id)) {
        this.tasks.delete(t.id);
        this.settle(t, null, CANCELLED);
      } else {
        tasks.push(t);
      }
    }
    if (tasks.length === 0) {
      this.roundCounter--;
      return null;
    }
    // Split into W sub-batches: a job-scoped job's tasks all go to one sub-batch (by job), first in
    // it, where only that sub-batch's request places them; the rest are dealt round the sub-batches
    // and may be claimed by any thread (messages.ts RoundRequest).
    const jobBuckets: PendingTask[][] = [];
    const buckets: PendingTask[][] = [];
    for (let w = 0; w < W; w++) {
      jobBuckets.push([]);
      buckets.push([]);
    }
    const jobBucket = new Map<string, number>();
    // A job-scoped job sits in one bucket, so it enters one sub-batch's job list and this list once.
    const jobList: JobState[] = [];
    let rr = 0;
    for (const t of tasks) {
      if (t.cset?.jobScoped) {
        let b = jobBucket.get(t.jobKey);
        if (b === undefined) {
          b = jobBucket.size % W;
          jobBucket.set(t.jobKey, b);
        }
        jobBuckets[b]!.push(t);
      } else if (t.units >= 2 * W) {
        // A large slice is shared out so every thread gets a part.
        const each = Math.ceil(t.units / W);
        for (let w = 0; w < W && t.units > 0; w++) buckets[w]!.push(splitSlice(t, Math.min(each, t.units)));
      } else {
        buckets[rr]!.push(t);
        rr = rr + 1 === W ? 0 : rr + 1;
      }
    }
    const ordered: PendingTask[] = [];
    const pos: number[] = [];
    let rowsUsed = 0;
    const subs: { lo: number; shared: number; hi: number; jobs: RoundJob[] }[] = [];
    const csets = new Map<number, CompiledConstraints>();
    const req = buf.req;
    let portsAt = 0;
    for (let w = 0; w < W; w++) {
      const lo = rowsUsed;
      const jobsForSub: RoundJob[] = [];
      const jobIdxLocal = new Map<string, number>();
      // Writes a slice's rows into the task buffer, after those written so far.
      const write = (t: PendingTask): void => {
        if (t.units === 0) return;
        const first = rowsUsed;
        ordered.push(t);
        pos.push(first);
        rowsUsed += t.units;
        let cset = t.cset;
        if (cset !== null) {
          cset = this.compiler.get(cset.id)!; // current generation of attribute values
          t.cset = cset;
          csets.set(cset.id, cset);
        }
        let jobIdx = -1;
        if (cset?.jobScoped) {
          let j = jobIdxLocal.get(t.jobKey);
          if (j === undefined) {
            const js = this.jobs.get(t.jobKey)!;
            js.inFlight = true;
            j = jobsForSub.length;
            jobIdxLocal.set(t.jobKey, j);
            jobsForSub.push({ cset: cset.id, rows: rowsOf(js) });
            jobList.push(js);
          }
          jobIdx = j;
        }
        const csetId = cset === null ? -1 : cset.id;
        for (let i = first; i < rowsUsed; i++) {
          const r = i * Req.STRIDE;
          req[r + Req.CPU] = t.cpu;
          req[r + Req.MEM] = t.mem;
          req[r + Req.DISK] = t.disk;
          req[r + Req.GPU] = t.gpu;
          req[r + Req.PORTS] = t.ports;
          req[r + Req.POLICY] = t.policy;
          req[r + Req.CSET] = csetId;
          req[r + Req.JOB] = jobIdx;
          req[r + Req.PORTS_AT] = portsAt;
          portsAt += t.ports;
        }
      };
      for (const t of jobBuckets[w]!) write(t);
      const shared = rowsUsed;
      for (const t of buckets[w]!) write(t);
      subs.push({ lo, shared, hi: rowsUsed, jobs: jobsForSub });
    }
    const ranges = new Int32Array(2 * W);
    for (let w = 0; w < W; w++) {
      ranges[2 * w] = subs[w]!.shared;
      ranges[2 * w + 1] = subs[w]!.hi;
      Atomics.store(buf.claims, w, subs[w]!.shared);
    }
    const roundCsets = [...csets.values()];
    const requests: RoundRequest[] = [];
    for (let w = 0; w < W; w++) {
      const s = subs[w]!;
      if (s.hi > s.lo) {
        requests.push({ buffer: index % ROUNDS_IN_FLIGHT, lo: s.lo, shared: s.shared, hi: s.hi, sub: w, ranges, ownerCount: W, csets: roundCsets, jobs: s.jobs });
      }
    }
    const promise = Promise.all(requests.map((r) => this.pool.run(r))).then(
      (results) => {
        for (const r of results) {
          this.counters.conflicts += r.conflicts;
          this.counters.retries += r.retries;
          this.counters.workerBusyMs += r.busyMs;
        }
      },
    );
    return { index, tasks: ordered, pos, jobs: jobList, promise };
  }

  private jobState(jobKey: string, cset: CompiledConstraints): JobState {
    let js = this.jobs.get(jobKey);
    if (!js) {
      js = { cset, rows: new Map(), inFlight: false };
      this.jobs.set(jobKey, js);
    }
    return js;
  }

  private finishRound(round: Round): void {
    this.counters.rounds++;
    const buf = this.buffers[round.index % ROUNDS_IN_FLIGHT]!;
    const res = buf.res;
    const req = buf.req;
    const portsOut = buf.ports;
    const requeue: PendingTask[] = [];
    // Items that lost every race, by how many times they have now come back (backoff grows with it).
    const lost: PendingTask[][] = [];
    for (let k = 0; k < round.tasks.length; k++) {
      const t = round.tasks[k]!;
      const i = round.pos[k]!;
      if (t.group !== null) {
        this.finishSlice(t, t.group, i, res, req, portsOut, lost);
        continue;
      }
      const o = i * Res.STRIDE;
      const status = res[o + Res.STATUS]!;
      if (status === Status.OK) {
        const row = res[o + Res.ROW]!;
        const at = req[i * Req.STRIDE + Req.PORTS_AT]!;
        const ports: number[] = [];
        for (let k = 0; k < t.ports; k++) ports.push(portsOut[at + k]!);
        const nodeId = this.liveNodeAt(row);
        if (nodeId === undefined) {
          // The node left while this round ran: undo the commit and try again elsewhere.
          this.refund(t, row, ports);
          requeue.push(t);
          continue;
        }
        if (this.cancelled.size > 0 && this.cancelled.delete(t.id)) {
          this.tasks.delete(t.id);
          this.refund(t, row, ports);
          this.settle(t, null, CANCELLED);
          continue;
        }
        const h = t.held!;
        h.ports = ports;
        h.nodeId = nodeId;
        h.row = row;
        this.running++;
        if (t.cset?.jobScoped) addJobRow(this.jobs.get(t.jobKey)!, row);
        this.counters.placed++;
        this.settle(t, { taskId: t.id, nodeId, ports }, null);
      } else {
        this.chargeRole(t.role, -t.cpu, -t.mem, -t.disk, -t.gpu);
        if (this.cancelled.size > 0 && this.cancelled.delete(t.id)) {
          this.tasks.delete(t.id);
          this.settle(t, null, CANCELLED);
        } else if (t.requeues < MAX_REQUEUES && lostRaces(res[o + Res.REASON]!)) {
          t.requeues++;
          this.counters.requeued++;
          (lost[t.requeues] ??= []).push(t);
        } else {
          this.tasks.delete(t.id);
          this.counters.unplaced++;
          this.settle(t, null, describeUnplaced(status, res[o + Res.REASON]!, res[o + Res.DETAIL]!, t, t.cset));
        }
      }
    }
    for (const js of round.jobs) js.inFlight = false;
    if (requeue.length > 0) this.queue.unshift(requeue);
    for (let n = 1; n < lost.length; n++) if (lost[n] !== undefined) this.backOff(lost[n]!, n);
  }

  /**
   * Puts back items that lost every race for the rows they fit, after 2^(n-1) ms for their n-th
   * time: the round right after would meet the same writer if one holds a row (a preempted thread
   * mid-commit holds it for its whole time slice), and the wait is what lets it finish.
   */
  private backOff(items: PendingTask[], n: number): void {
    let units = 0;
    for (const t of items) units += t.units;
    this.backingOff += units;
    const timer = setTimeout(() => {
      this.backoffTimers.delete(timer);
      this.backingOff -= units;
      this.queue.unshift(items);
      this.kick();
    }, 1 << (n - 1));
    this.backoffTimers.add(timer);
  }

  /** Results of a group slice: rows [at, at + units) of the round's buffer. */
  private finishSlice(t: PendingTask, g: GroupState, at: number, res: Int32Array, req: Int32Array, portsOut: Int32Array, lost: PendingTask[][]): void {
    const js = t.cset?.jobScoped ? this.jobs.get(t.jobKey) : undefined;
    let gone = 0;
    // Instances that lost every race for rows they fit go back to the queue, as slices of runs.
    let back = 0;
    let run: PendingTask | null = null;
    let said: UnplacedDescription | null = null;
    let saidStatus = 0;
    let saidReason = 0;
    let saidDetail = 0;
    for (let k = 0; k < t.units; k++) {
      const i = at + k;
      const idx = t.start + k;
      const o = i * Res.STRIDE;
      const status = res[o + Res.STATUS]!;
      if (status === Status.OK) {
        const row = res[o + Res.ROW]!;
        const from = req[i * Req.STRIDE + Req.PORTS_AT]!;
        const to = idx * g.ports;
        for (let p = 0; p < g.ports; p++) g.portsOut[to + p] = portsOut[from + p]!;
        // Rows leave only between rounds (removeNode defers while one is in flight): nothing to check
        // unless a removal is pending.
        if (this.removing.size > 0 && this.liveNodeAt(row) === undefined) {
          // The node left while this round ran: undo the commit; the instance is reported unplaced.
          this.refund(g, row, portsOf(g, idx));
          g.slots[idx] = Instance.UNPLACED;
          g.unplaced.push({ index: idx, ...NODE_LEFT });
          gone++;
          continue;
        }
        g.slots[idx] = row;
        if (js) addJobRow(js, row);
      } else {
        this.chargeRole(g.role, -g.cpu, -g.mem, -g.disk, -g.gpu);
        if (t.requeues < MAX_REQUEUES && lostRaces(res[o + Res.REASON]!)) {
          if (run !== null && run.start + run.units === idx) run.units++;
          else {
            run = sliceAt(t, idx);
            (lost[run.requeues] ??= []).push(run);
          }
          back++;
          continue;
        }
        g.slots[idx] = Instance.UNPLACED;
        // Instances of a slice that fail, fail alike (the tail of a full cluster): word the outcome once.
        const reason = res[o + Res.REASON]!;
        const detail = res[o + Res.DETAIL]!;
        if (said === null || status !== saidStatus || reason !== saidReason || detail !== saidDetail) {
          said = describeUnplaced(status, reason, detail, t, t.cset);
          saidStatus = status;
          saidReason = reason;
          saidDetail = detail;
        }
        g.unplaced.push({ index: idx, status: said.status, code: said.code, reason: said.reason });
        gone++;
      }
    }
    const placed = t.units - gone - back;
    g.placed += placed;
    this.running += placed;
    this.counters.placed += placed;
    this.counters.unplaced += gone;
    this.counters.requeued += back;
    g.remaining -= t.units - back;
    if (g.remaining === 0) this.resolveGroup(g);
  }

  /** A slice that will never be placed (a failed round): its instances are reported as errors. */
  private failSlice(t: PendingTask, message: string): void {
    const g = t.group!;
    for (let k = 0; k < t.units; k++) {
      g.slots[t.start + k] = Instance.UNPLACED;
      g.unplaced.push({ index: t.start + k, status: 'error', code: UnplacedCode.INTERNAL, reason: `placement round failed: ${message}` });
    }
    g.remaining -= t.units;
    if (g.remaining === 0) this.resolveGroup(g);
  }

  private resolveGroup(g: GroupState): void {
    this.batchLatencyNs.recordValue(Math.max(1, Math.round((performance.now() - g.started) * 1e6)));
    const nodes: (string | null)[] = new Array<string | null>(g.count);
    for (let i = 0; i < g.count; i++) {
      const row = g.slots[i]!;
      nodes[i] = row >= 0 ? (this.table.idOf(row) ?? null) : null;
    }
    const unplaced = g.unplaced;
    unplaced.sort((a, b) => a.index - b.index);
    const resolve = g.resolve;
    g.resolve = NO_RESOLVE;
    g.unplaced = NO_UNPLACED;
    resolve({ handle: g.handle, count: g.count, placed: g.placed, nodes, ports: g.portsOut, portsPerInstance: g.ports, unplaced });
  }

  private settle(t: PendingTask, a: Assignment | null, u: UnplacedDescription | null): void {
    const call = t.call;
    if (a !== null) call.result.assignments.push(a);
    else call.result.unplaced.push({ taskId: t.id, ...u! });
    if (--call.remaining === 0) {
      this.batchLatencyNs.recordValue(Math.max(1, Math.round((performance.now() - call.started) * 1e6)));
      call.resolve(call.result);
    }
  }

  /** The id of the node at `row`, or undefined when it left (or is leaving) while a round ran. */
  private liveNodeAt(row: number): string | undefined {
    const nodeId = this.table.idOf(row);
    return nodeId === undefined || (this.removing.size > 0 && this.removing.has(nodeId)) ? undefined : nodeId;
  }

  private flushRemovals(): void {
    for (const id of this.removing) this.table.removeNode(id);
    this.removing.clear();
  }

  private failAll(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const fail = (t: PendingTask): void => {
      if (t.group !== null) {
        this.failSlice(t, message);
        return;
      }
      this.tasks.delete(t.id);
      this.settle(t, null, { status: 'error', code: UnplacedCode.INTERNAL, reason: `placement round failed: ${message}` });
    };
    for (const round of this.inFlight) for (const t of round.tasks) fail(t);
    this.inFlight = [];
    for (const t of this.queue.take(Number.MAX_SAFE_INTEGER, () => true)) fail(t);
  }
}

/** Fields of TaskShapeRequest: the one list both field sets below derive from. */
const SHAPE_FIELDS = ['job', 'role', 'priority', 'resources', 'constraints', 'policy'] as const satisfies readonly (keyof TaskShapeRequest)[];
const TASK_FIELDS = new Set<string>(['id', ...SHAPE_FIELDS]);
const GROUP_FIELDS = new Set<string>([...SHAPE_FIELDS, 'count']);

/** A field's path in a task batch (`tasks[i].field`), or at the top level of a group (i < 0). */
function fieldPath(i: number, field: string): string {
  return i < 0 ? field : `tasks[${i}].${field}`;
}

/** An error about one field of task i, as problems under that task's paths. */
function problemsUnder(err: BorealisError, i: number, field: string): FieldProblem[] {
  return err.problems.length > 0 ? err.problems.map((p) => ({ path: fieldPath(i, p.path), message: p.message })) : [{ path: fieldPath(i, field), message: err.message }];
}

/**
 * The refusal of tasks or a group whose shape is wrong. The code names the field when every problem is in
 * it (a caller can tell bad resources from a bad constraint); the message lists the first ten problems.
 */
function invalidShapes(what: string, problems: FieldProblem[]): BorealisError {
  const field = (p: FieldProblem): string => p.path.replace(/^tasks\[\d+\]\./, '').split(/[.[]/, 1)[0]!;
  const code = problems.every((p) => field(p) === 'constraints')
    ? 'BRL_ERR_BAD_CONSTRAINT'
    : problems.every((p) => field(p) === 'resources')
      ? 'BRL_ERR_BAD_RESOURCES'
      : 'BRL_ERR_INVALID_ARGUMENT';
  const listed = problems
    .slice(0, 10)
    .map((p) => `${p.path}: ${p.message}`)
    .join('; ');
  return new BorealisError(code, `${what}: ${listed}${problems.length > 10 ? ` (+${problems.length - 10} more)` : ''}`, problems);
}

/** Cuts the first n instances off a group slice (the queue's split, and the round's share-out). */
function splitSlice(t: PendingTask, n: number): PendingTask {
  const part = copyItem(t, t.start, n, t.requeues);
  t.start += n;
  t.units -= n;
  return part;
}

/** A one-instance slice of `t` at instance `idx`, one requeue further along (finishSlice extends it into a run). */
function sliceAt(t: PendingTask, idx: number): PendingTask {
  return copyItem(t, idx, 1, t.requeues + 1);
}

/** A queue item like `t` for instances [start, start + units). */
function copyItem(t: PendingTask, start: number, units: number, requeues: number): PendingTask {
  // Field by field in checkShape's order, not a spread: a clone keeps every queue item on one hidden class.
  return {
    id: t.id,
    jobKey: t.jobKey,
    role: t.role,
    priority: t.priority,
    dominant: t.dominant,
    cpu: t.cpu,
    mem: t.mem,
    disk: t.disk,
    gpu: t.gpu,
    ports: t.ports,
    policy: t.policy,
    cset: t.cset,
    call: t.call,
    units,
    group: t.group,
    start,
    requeues,
    held: t.held,
  };
}

/** Undoes splitSlice(t, part.units): the part's instances go back to the front of `t`. */
function joinSlice(t: PendingTask, part: PendingTask): void {
  t.start -= part.units;
  t.units += part.units;
}

/**
 * Times a task that lost every race for rows it fits is put back before it is reported unplaced
 * (code conflicts). Such a loss is about timing, not the table, so a later round, after the winners'
 * commits, usually places it. With the backoff (1, 2, 4 ... 128 ms), a row held for a quarter of a
 * second in all makes the task be reported.
 */
const MAX_REQUEUES = 8;

/** True when a placement's reason word says it lost races (Reason.CONFLICTS), not that nothing fits. */
function lostRaces(word: number): boolean {
  return reasonCode(word) === Reason.CONFLICTS;
}

/** The ports of a task not placed yet (never written: placement puts a fresh array in). */
const NO_HELD_PORTS: number[] = Object.freeze([]) as unknown as number[];

/** Constant outcomes: built once, not per task (hot path, style rule 5). */
const CANCELLED: UnplacedDescription = { status: 'unplaceable', code: UnplacedCode.CANCELLED, reason: 'cancelled while pending' };
const NODE_LEFT: UnplacedDescription = { status: 'unplaceable', code: UnplacedCode.CONFLICTS, reason: 'the chosen node left during placement; retry' };

/** One more instance of the job on `row` (limit / distinct-hosts accounting). */
function addJobRow(js: JobState, row: number): void {
  js.rows.set(row, (js.rows.get(row) ?? 0) + 1);
}

function rowsOf(js: JobState): Int32Array {
  let n = 0;
  for (const c of js.rows.values()) n += c;
  const out = new Int32Array(n);
  let i = 0;
  for (const [row, c] of js.rows) for (let k = 0; k < c; k++) out[i++] = row;
  return out;
}

