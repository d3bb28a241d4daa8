import type { Allocator, Assignment, TaskRequest, Unplaced } from '../allocator/allocator.js';
import { isBorealisError } from '../api/errors.js';

export interface PlacerHooks {
  /** The placement request of a task that is still pending; null when it no longer is (killed meanwhile). */
  request(taskId: string): TaskRequest | null;
  /** Assignments of one batch; `queuedAt` gives when each task first asked (performance.now()). */
  placed(assignments: Assignment[], queuedAt: (taskId: string) => number): void;
  /** A task that stays pending, with the allocator's reason (for TaskView.message). */
  unplaced(u: Unplaced): void;
  /** A hook threw: a bug, reported rather than left as an unhandled rejection that would end the process. */
  bug(err: unknown): void;
}

export interface PlacerOptions {
  /** First retry delay for tasks no node could take; doubles while retries place nothing. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * 100 ms: a task that did not fit is retried soon after (capacity frees up in bursts as tasks end),
 * but not in a loop that would keep a placement thread busy with hopeless work.
 */
const DEFAULT_RETRY_MIN_MS = 100;
/** 5 s: the longest a pending task waits for a retry when nothing in the cluster changes. */
const DEFAULT_RETRY_MAX_MS = 5_000;
/**
 * Released capacity retries unplaced tasks at most this often: a cluster where hundreds of tasks
 * end per second would otherwise re-submit every pending task hundreds of times a second.
 */
const CAPACITY_RETRY_GAP_MS = 50;

type Park = 'transient' | 'final';

/**
 * Feeds pending tasks to the allocator in batches. Submissions within one turn of the event loop
 * are coalesced (setImmediate) into one `place()` call, which the allocator cuts into rounds for
 * its threads. Tasks that do not fit are parked: transient ones (no room now) are retried when
 * capacity is released, when an agent joins, and on a timer with backoff; final ones (no node
 * could ever hold them) only when the topology changes, and at the slowest timer pace in case the
 * allocator was wrong.
 */
export class Placer {
  private readonly queued = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly parked = new Map<string, Park>();
  private readonly queuedAt = new Map<string, number>();
  private flushScheduled: NodeJS.Immediate | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private lastCapacityRetry = 0;
  private closed = false;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly allocator: Allocator,
    private readonly hooks: PlacerHooks,
    opts: PlacerOptions = {},
  ) {
    this.minMs = opts.retryMinMs ?? DEFAULT_RETRY_MIN_MS;
    this.maxMs = Math.max(this.minMs, opts.retryMaxMs ?? DEFAULT_RETRY_MAX_MS);
    this.retryDelay = this.minMs;
  }

  /** Tasks waiting for a placement (queued, in flight, or parked). */
  get waiting(): number {
    return this.queued.size + this.inFlight.size + this.parked.size;
  }

  enqueue(taskIds: Iterable<string>): void {
    const now = performance.now();
    for (const id of taskIds) {
      if (this.inFlight.has(id)) continue;
      this.parked.delete(id);
      this.queued.add(id);
      if (!this.queuedAt.has(id)) this.queuedAt.set(id, now);
    }
    this.scheduleFlush();
  }

  /** A task is no longer pending (killed): stop placing it. A placement already in flight is cancelled. */
  withdraw(taskId: string): void {
    this.queued.delete(taskId);
    this.parked.delete(taskId);
    this.queuedAt.delete(taskId);
    if (this.inFlight.has(taskId)) this.allocator.cancel(taskId);
  }

  /**
   * Something changed that may let parked tasks fit: 'capacity' (resources released), or
   * 'topology' (an agent joined or came back), which also retries final verdicts.
   */
  wake(kind: 'capacity' | 'topology'): void {
    if (this.closed || this.parked.size === 0) return;
    if (kind === 'capacity') {
      const now = performance.now();
      if (now - this.lastCapacityRetry < CAPACITY_RETRY_GAP_MS) {
        this.armRetry(CAPACITY_RETRY_GAP_MS - (now - this.lastCapacityRetry));
        return;
      }
      this.lastCapacityRetry = now;
    }
    this.unpark(kind === 'topology');
  }

  close(): void {
    this.closed = true;
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.flushScheduled = null;
    this.retryTimer = null;
  }

  private unpark(includeFinal: boolean): void {
    const ids: string[] = [];
    for (const [id, kind] of this.parked) if (includeFinal || kind === 'transient') ids.push(id);
    if (ids.length > 0) this.enqueue(ids);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed || this.queued.size === 0) return;
    this.flushScheduled = setImmediate(() => {
      this.flushScheduled = null;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed) return;
    const reqs: TaskRequest[] = [];
    for (const id of this.queued) {
      const r = this.hooks.request(id);
      if (r === null) {
        this.queuedAt.delete(id);
        continue;
      }
      reqs.push(r);
      this.inFlight.add(id);
    }
    this.queued.clear();
    if (reqs.length === 0) return;
    this.allocator
      .place(reqs)
      .then(
        (result) => this.settle(reqs, result.assignments, result.unplaced),
        (err: unknown) => this.refused(reqs, err),
      )
      .catch((err: unknown) => this.hooks.bug(err));
  }

  private settle(reqs: TaskRequest[], assignments: Assignment[], unplaced: Unplaced[]): void {
    for (const r of reqs) this.inFlight.delete(r.id);
    if (this.closed) return;
    if (assignments.length > 0) {
      this.retryDelay = this.minMs;
      this.hooks.placed(assignments, (id) => this.queuedAt.get(id) ?? performance.now());
      for (const a of assignments) this.queuedAt.delete(a.taskId);
    }
    for (const u of unplaced) {
      if (u.code === 'cancelled' || this.hooks.request(u.taskId) === null) {
        this.queuedAt.delete(u.taskId);
        continue;
      }
      this.parked.set(u.taskId, u.status === 'unplaceable_final' ? 'final' : 'transient');
      this.hooks.unplaced(u);
    }
    if (this.parked.size > 0) this.armRetry(this.retryDelay);
  }

  /**
   * The allocator refused the whole batch (a request it considers invalid: specs are validated at
   * submit, so this is a bug or a version skew). The tasks it names are parked as final with its
   * reason; the rest go back in the queue so one bad task cannot hold up the others.
   */
  private refused(reqs: TaskRequest[], err: unknown): void {
    for (const r of reqs) this.inFlight.delete(r.id);
    if (this.closed) return;
    const message = err instanceof Error ? err.message : String(err);
    const bad = new Set<string>();
    if (isBorealisError(err)) {
      for (const p of err.problems) {
        const m = /^tasks\[(\d+)\]/.exec(p.path);
        const r = m ? reqs[Number(m[1])] : undefined;
        if (r) bad.add(r.id);
      }
    }
    // Nothing attributable (allocator closed, internal error): park everything for a timed retry.
    const all = bad.size === 0;
    const retry: string[] = [];
    for (const r of reqs) {
      if (all || bad.has(r.id)) {
        this.parked.set(r.id, all ? 'transient' : 'final');
        this.hooks.unplaced({ taskId: r.id, status: 'error', code: 'internal', reason: `placement refused: ${message}` });
      } else {
        retry.push(r.id);
      }
    }
    if (retry.length > 0) this.enqueue(retry);
    if (this.parked.size > 0) this.armRetry(this.retryDelay);
  }

  private armRetry(delay: number): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      const slowest = this.retryDelay >= this.maxMs;
      this.retryDelay = Math.min(this.maxMs, this.retryDelay * 2);
      this.unpark(slowest);
    }, delay);
    this.retryTimer.unref();
  }
}
