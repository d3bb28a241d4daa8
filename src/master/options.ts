import type { AllocatorOptions } from '../allocator/allocator.js';
import { InvalidArgumentError } from '../api/errors.js';
import type { EventLogOptions } from '../events/log.js';
import { definedOnly } from '../util/defined-only.js';

/** The subset of pino the master logs through (any pino logger fits). */
export interface MasterLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MasterOptions {
  /** The master's state lives here (the journal in `<dataDir>/journal`). */
  dataDir: string;
  /** An agent silent for longer is lost. */
  heartbeatTimeoutMs?: number;
  /** What agents are told to heartbeat at; must be below the timeout. */
  heartbeatIntervalMs?: number;
  /** fdatasync journal batches before acknowledging them. */
  fsync?: boolean;
  allocator?: Omit<AllocatorOptions, 'nodes'>;
  /** First restart delay of a failed instance; doubles per consecutive failure (a job's restartPolicy overrides). */
  restartBackoffMs?: number;
  maxRestartBackoffMs?: number;
  /** After a restart, how long agents have to re-register before their tasks are declared lost (default: heartbeatTimeoutMs). */
  reconcileGraceMs?: number;
  /** Journal entries between compaction snapshots. */
  compactEvery?: number;
  /** Events the bus keeps in memory for live readers and recent resumes (default 16,384). */
  eventCapacity?: number;
  /** The event log in `<dataDir>/events` (segment size, retention by bytes and by count): older resumes read it. */
  eventLog?: Omit<EventLogOptions, 'onError'>;
  /** Retry pacing of tasks no agent could take. */
  placementRetryMinMs?: number;
  placementRetryMaxMs?: number;
  /**
   * A task launched on an agent (staging) that the agent has not reported on for this long is lost
   * (reason `staging_timeout`), killed there and, for a service, replaced.
   */
  stagingTimeoutMs?: number;
  /** First resend of a KillTask for a task that has not ended; doubles per resend up to killRetryMaxMs. */
  killRetryMs?: number;
  killRetryMaxMs?: number;
  logger?: MasterLogger;
}

export const DEFAULTS = {
  // Mesos waits 75 s (agent_ping_timeout x max_agent_ping_timeouts); 10 s suits one machine or a LAN.
  heartbeatTimeoutMs: 10_000,
  // Ten heartbeats per timeout: one or two lost frames never cost an agent.
  heartbeatIntervalMs: 1_000,
  fsync: true,
  restartBackoffMs: 1_000,
  // A crash-looping task is still retried at least once a minute.
  maxRestartBackoffMs: 60_000,
  // A snapshot every 10,000 entries keeps a restart's replay well under a second.
  compactEvery: 10_000,
  placementRetryMinMs: 100,
  placementRetryMaxMs: 5_000,
  // Aurora's transient-task timeout is 5 min; a launch here is one local spawn, so a minute is
  // already far past any agent that is merely slow, and short enough to replace the task promptly.
  stagingTimeoutMs: 60_000,
  // A KillTask lost on the wire (or dropped by a busy agent) is resent after 5 s, the default kill
  // grace: a task still shutting down within its grace is not pestered before it could have ended.
  killRetryMs: 5_000,
  // Doubling stops at a minute, so a task an agent cannot kill is still asked about every minute.
  killRetryMaxMs: 60_000,
};

export type FilledOptions = Required<Omit<MasterOptions, 'logger' | 'eventCapacity'>> & { eventCapacity: number | undefined };

/** Checks every option (an error names the option), then merges the defaults once. */
export function checkOptions(opts: MasterOptions): FilledOptions {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('Master.open takes an options object');
  if (typeof opts.dataDir !== 'string' || opts.dataDir === '') throw new InvalidArgumentError('dataDir must be a non-empty path');
  const o = { ...DEFAULTS, ...definedOnly(opts) };
  for (const k of ['heartbeatTimeoutMs', 'heartbeatIntervalMs', 'compactEvery', 'placementRetryMinMs', 'placementRetryMaxMs', 'stagingTimeoutMs', 'killRetryMs', 'killRetryMaxMs'] as const) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k]) || o[k] <= 0) throw new InvalidArgumentError(`${k} must be a positive number, got ${o[k]}`);
  }
  for (const k of ['restartBackoffMs', 'maxRestartBackoffMs'] as const) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k]) || o[k] < 0) throw new InvalidArgumentError(`${k} must be >= 0, got ${o[k]}`);
  }
  if (o.heartbeatIntervalMs >= o.heartbeatTimeoutMs) {
    throw new InvalidArgumentError(`heartbeatIntervalMs (${o.heartbeatIntervalMs}) must be below heartbeatTimeoutMs (${o.heartbeatTimeoutMs})`);
  }
  const grace = o.reconcileGraceMs ?? o.heartbeatTimeoutMs;
  if (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0) throw new InvalidArgumentError(`reconcileGraceMs must be >= 0, got ${grace}`);
  if (o.killRetryMaxMs < o.killRetryMs) throw new InvalidArgumentError(`killRetryMaxMs (${o.killRetryMaxMs}) must be >= killRetryMs (${o.killRetryMs})`);
  if (typeof o.fsync !== 'boolean') throw new InvalidArgumentError(`fsync must be a boolean, got ${typeof o.fsync}`);
  if (o.allocator !== undefined && (o.allocator === null || typeof o.allocator !== 'object')) throw new InvalidArgumentError('allocator must be an options object');
  if (o.eventLog !== undefined && (o.eventLog === null || typeof o.eventLog !== 'object')) throw new InvalidArgumentError('eventLog must be an options object');
  return {
    dataDir: opts.dataDir,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    fsync: o.fsync,
    allocator: o.allocator ?? {},
    restartBackoffMs: o.restartBackoffMs,
    maxRestartBackoffMs: o.maxRestartBackoffMs,
    reconcileGraceMs: grace,
    compactEvery: o.compactEvery,
    eventCapacity: o.eventCapacity,
    eventLog: o.eventLog ?? {},
    placementRetryMinMs: o.placementRetryMinMs,
    placementRetryMaxMs: o.placementRetryMaxMs,
    stagingTimeoutMs: o.stagingTimeoutMs,
    killRetryMs: o.killRetryMs,
    killRetryMaxMs: o.killRetryMaxMs,
  };
}
