/**
 * Reliable, ordered status updates, as Mesos' status update manager does them.
 *
 * Each task has its own stream of updates. Only the head of a stream is ever on the wire: the next update of that
 * task is sent once the master acknowledges the head's uuid. So the master sees each task's updates strictly in
 * the order they happened (never RUNNING before STARTING, even across a reconnect), at least once each; and
 * different tasks never wait for each other. An unacknowledged head is sent again:
 * - after every (re)registration, since an update written to a socket that then died may never have arrived;
 * - while connected, after a retry delay (10 s, doubling per attempt up to 2 min), in case the master dropped it.
 * A stream that drains is forgotten; the owner hears of it (a terminal task can then be forgotten too).
 */
import type { TaskStatusMsg } from '../proto/index.js';

export interface StatusRetryOptions {
  /** First resend of an unacknowledged head while connected. */
  initialMs?: number;
  maxMs?: number;
}

/**
 * Mesos' first retry is 10 s: a master busy with a large re-registration storm acknowledges late, and a resend
 * too soon only adds to its load. The doubling stops at 2 min so a stuck stream is still retried every so often.
 */
export const DEFAULT_STATUS_RETRY = { initialMs: 10_000, maxMs: 120_000 } as const;

interface Stream {
  readonly taskId: string;
  readonly items: TaskStatusMsg[];
  /** When the head was last written to the master; undefined when it is not on the wire. */
  sentAt: number | undefined;
  /** Resends of the current head while connected (for the retry doubling). */
  retries: number;
}

export class StatusUpdateQueue {
  readonly #streams = new Map<string, Stream>();
  readonly #retry: Required<StatusRetryOptions>;
  readonly #send: (status: TaskStatusMsg) => boolean;
  readonly #onDrained: (taskId: string) => void;
  #online = false;

  /**
   * `send` writes one update to the master and says whether it could (false when the socket is gone);
   * `onDrained` hears when a task's last pending update was acknowledged.
   */
  constructor(send: (status: TaskStatusMsg) => boolean, onDrained: (taskId: string) => void, retry: StatusRetryOptions = {}) {
    this.#send = send;
    this.#onDrained = onDrained;
    this.#retry = { initialMs: retry.initialMs ?? DEFAULT_STATUS_RETRY.initialMs, maxMs: retry.maxMs ?? DEFAULT_STATUS_RETRY.maxMs };
  }

  /** Updates not yet acknowledged, across all tasks. */
  get pending(): number {
    let n = 0;
    for (const s of this.#streams.values()) n += s.items.length;
    return n;
  }

  /** Whether `taskId` has updates the master has not acknowledged. */
  hasPending(taskId: string): boolean {
    return this.#streams.has(taskId);
  }

  /** The unacknowledged updates of one task, oldest first (for diagnostics and tests). */
  pendingOf(taskId: string): readonly TaskStatusMsg[] {
    return this.#streams.get(taskId)?.items ?? [];
  }

  push(status: TaskStatusMsg): void {
    let stream = this.#streams.get(status.taskId);
    if (stream === undefined) {
      stream = { taskId: status.taskId, items: [], sentAt: undefined, retries: 0 };
      this.#streams.set(status.taskId, stream);
    }
    stream.items.push(status);
    if (this.#online && stream.items.length === 1) this.#sendHead(stream);
  }

  /** Handles an Acknowledge. Returns false when it matched no head (a duplicate ack, or an unknown uuid). */
  ack(taskId: string, uuid: string): boolean {
    const stream = this.#streams.get(taskId) ?? this.#findByHead(uuid);
    if (stream === undefined || stream.items[0]?.uuid !== uuid) return false;
    stream.items.shift();
    stream.sentAt = undefined;
    stream.retries = 0;
    if (stream.items.length > 0) {
      if (this.#online) this.#sendHead(stream);
    } else {
      this.#streams.delete(stream.taskId);
      this.#onDrained(stream.taskId);
    }
    return true;
  }

  /** Registered with the master: (re)send every head, in the order the streams began. */
  online(): void {
    this.#online = true;
    for (const stream of this.#streams.values()) {
      stream.retries = 0;
      this.#sendHead(stream);
    }
  }

  /** Connection lost: nothing is on the wire any more. */
  offline(): void {
    this.#online = false;
    for (const stream of this.#streams.values()) stream.sentAt = undefined;
  }

  /** Resends heads unacknowledged for longer than their retry delay; called periodically while online. */
  retryDue(now: number): number {
    if (!this.#online) return 0;
    let resent = 0;
    for (const stream of this.#streams.values()) {
      if (stream.sentAt === undefined) {
        this.#sendHead(stream);
        continue;
      }
      const delay = Math.min(this.#retry.maxMs, this.#retry.initialMs * 2 ** Math.min(stream.retries, 20));
      if (now - stream.sentAt >= delay) {
        stream.retries++;
        this.#sendHead(stream);
        resent++;
      }
    }
    return resent;
  }

  #sendHead(stream: Stream): void {
    const head = stream.items[0];
    if (head === undefined) return;
    stream.sentAt = this.#send(head) ? Date.now() : undefined;
  }

  #findByHead(uuid: string): Stream | undefined {
    for (const stream of this.#streams.values()) if (stream.items[0]?.uuid === uuid) return stream;
    return undefined;
  }
}
