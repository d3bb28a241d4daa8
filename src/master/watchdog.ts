import type { TaskRecord } from './store.js';
import { isTerminal } from './task-states.js';

/** What the watchdog needs of the master: the tasks, the agents' links, and the two actions. */
export interface WatchdogHost {
  /** The task as it is now; undefined once it is gone. */
  task(id: string): TaskRecord | undefined;
  /** Whether the agent has a live connection (a KillTask sent now would reach it). */
  connected(agentId: string): boolean;
  /** A task stayed in staging past the timeout. */
  stagingTimedOut(t: TaskRecord): void;
  /** A task the master asked to kill has not ended: ask again. */
  resendKill(t: TaskRecord): void;
  /** A callback threw: a bug, logged; the watchdog keeps going. */
  bug(err: unknown): void;
}

export interface WatchdogOptions {
  stagingTimeoutMs: number;
  killRetryMs: number;
  killRetryMaxMs: number;
}

/** The watchdog looks this many times per period, so a deadline fires at most 25% late... */
const TICKS_PER_PERIOD = 4;
/** ...never more often than this (a tiny test period must not become a busy loop)... */
const MIN_TICK_MS = 10;
/** ...and at least once a second, whatever the periods. */
const MAX_TICK_MS = 1_000;

/**
 * Deadlines of tasks that wait on an agent, the two places where the master cannot rely on the
 * agent to speak first:
 *
 * - staging: a launch was sent and the agent said nothing of the task (the launch was lost, or the
 *   agent took it and hung). Aurora's transient-task timeout: past `stagingTimeoutMs` the task is
 *   lost and replaced, so an instance is never stuck behind a launch that went nowhere.
 * - kills: a KillTask was sent and the task has not ended. A kill is otherwise only repeated when
 *   the agent re-registers (Registered.kill_tasks); a KillTask dropped on a connection that stayed
 *   up would leave the task running forever. It is resent after `killRetryMs`, doubling per resend
 *   up to `killRetryMaxMs`, while the agent is connected (an agent that is away gets its kills when
 *   it re-registers).
 *
 * Entries are dropped lazily: a tick discards those whose task moved on, so the master does not
 * have to tell the watchdog about every transition. Times are performance.now() (monotonic).
 */
export class TaskWatchdog {
  /** Staging task id -> deadline. */
  private readonly staging = new Map<string, number>();
  /** Task id being killed -> when to resend, and how many resends so far (for the doubling). */
  private readonly kills = new Map<string, { next: number; resends: number }>();
  private timer: NodeJS.Timeout | null;

  constructor(
    private readonly host: WatchdogHost,
    private readonly o: WatchdogOptions,
  ) {
    const tick = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.min(o.stagingTimeoutMs, o.killRetryMs) / TICKS_PER_PERIOD));
    this.timer = setInterval(() => this.tick(performance.now()), tick);
    this.timer.unref();
  }

  /** The task was placed (or found in staging after a restart): its agent has stagingTimeoutMs to report it. */
  staged(id: string, now = performance.now()): void {
    this.staging.set(id, now + this.o.stagingTimeoutMs);
  }

  /** A KillTask was sent for the task (or, after a restart, is owed): resend it until the task ends. */
  killSent(id: string, now = performance.now()): void {
    if (!this.kills.has(id)) this.kills.set(id, { next: now + this.o.killRetryMs, resends: 0 });
  }

  /** For tests and metrics: tasks being watched. */
  get watching(): { staging: number; kills: number } {
    return { staging: this.staging.size, kills: this.kills.size };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.staging.clear();
    this.kills.clear();
  }

  /** One pass over both tables; public so tests can drive it with a chosen clock. */
  tick(now: number): void {
    for (const [id, deadline] of this.staging) {
      const t = this.host.task(id);
      if (!t || t.state !== 'staging') {
        this.staging.delete(id);
        continue;
      }
      if (now < deadline) continue;
      this.staging.delete(id);
      this.safely(() => this.host.stagingTimedOut(t));
    }
    for (const [id, k] of this.kills) {
      const t = this.host.task(id);
      if (!t || isTerminal(t.state) || t.agentId === undefined) {
        this.kills.delete(id);
        continue;
      }
      if (now < k.next || !this.host.connected(t.agentId)) continue;
      k.resends++;
      // 2^20 resends is past any cap; stop doubling there so the delay never overflows.
      k.next = now + Math.min(this.o.killRetryMaxMs, this.o.killRetryMs * 2 ** Math.min(k.resends, 20));
      this.safely(() => this.host.resendKill(t));
    }
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.host.bug(err);
    }
  }
}
