/**
 * Public cluster traces read as task submissions for the benchmark's trace replay.
 * Resources come out in the units Borealis requests use: cores, MiB, MiB.
 */

export type TraceFormat = 'alibaba-v2018' | 'google-2011';

export const TRACE_FORMATS: readonly TraceFormat[] = ['alibaba-v2018', 'google-2011'];

export interface TraceSubmission {
  /** 1-based source line; every instance expanded from one alibaba row shares it. */
  line: number;
  /** Seconds since trace start (>= 0): when the task is submitted. */
  time: number;
  /** Unique within the trace. */
  taskId: string;
  job: string;
  /** alibaba: task_type; google: user hash; 'default' when the column is empty. */
  role: string;
  /** alibaba: 0; google: the priority column. */
  priority: number;
  /** Cores, fractional. */
  cpus: number;
  /** Whole MiB, >= 1. */
  memMiB: number;
  /** Whole MiB, >= 0. */
  diskMiB: number;
  /** google different-machines restriction; always false for alibaba. */
  distinctHosts: boolean;
  /** alibaba end - start, when both are known and end > start. */
  durationSec?: number;
}

export interface BadRow {
  line: number;
  reason: string;
}

export interface TraceReadOptions {
  /** Cores of the reference machine google requests are normalised to (default 64); alibaba plan_cpu is absolute. */
  machineCpus?: number;
  /** MiB of the reference machine: alibaba plan_mem is a percent of it, google memory a fraction (default 96 GiB). */
  machineMemMiB?: number;
  /** MiB of disk google disk requests are normalised to (default 2 TiB). */
  machineDiskMiB?: number;
  /** Stop after this many submissions (instances, not rows). */
  limit?: number;
}

export interface TraceReadResult {
  /** Sorted by time; ties keep file order. */
  submissions: TraceSubmission[];
  badRows: BadRow[];
  /** Source lines read; each is a submitting row, a bad row or a skipped line. */
  rows: number;
  /** Blank lines, non-SUBMIT google events and google SUBMITs stamped after the trace end. */
  skipped: number;
  format: TraceFormat;
}

export type TraceEvent = { kind: 'submission'; value: TraceSubmission } | { kind: 'bad'; value: BadRow };

/** What streamTrace returns when it finishes, for the counts its events do not carry. */
export interface TraceStreamStats {
  rows: number;
  skipped: number;
}
