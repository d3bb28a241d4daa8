/**
 * Alibaba cluster-trace-v2018 batch_task.csv:
 *   task_name, instance_num, job_name, task_type, status, start_time, end_time, plan_cpu, plan_mem
 * The table has no submit time, so a task is submitted at start_time (0 when empty). Each of its
 * instance_num instances is one submission, with id `<job>/<task>/<instance>` (instance from 0).
 */

import { RowError, TaskIds, atMost, decimal, integer, optional, shareToMiB, splitRow, type RowParser } from './row.js';
import type { TraceReadOptions, TraceSubmission } from './types.js';

export const ALIBABA_COLUMNS = 9;
/** plan_mem is a percent of this machine's memory. */
export const ALIBABA_DEFAULT_MEM_MIB = 96 * 1024;

function name(raw: string, column: string): string {
  if (raw === '') throw new RowError(`${column} is empty`);
  // '#' marks a resubmission suffix in task ids; allowing it in names could make two ids collide.
  if (raw.includes('#')) throw new RowError(`${column} ${JSON.stringify(raw)} contains '#'`);
  return raw;
}

function* instances(task: Omit<TraceSubmission, 'taskId'>, base: string, count: number): Generator<TraceSubmission> {
  for (let i = 0; i < count; i++) yield { ...task, taskId: `${base}/${i}` };
}

export function alibabaParser(opts: TraceReadOptions): RowParser {
  const machineMemMiB = opts.machineMemMiB ?? ALIBABA_DEFAULT_MEM_MIB;
  // A job may list the same task name twice (e.g. a rerun); the second row's instances get `<task>#2`.
  const ids = new TaskIds();

  return (text, line) => {
    const [taskRaw, instanceRaw, jobRaw, taskType, , startRaw, endRaw, cpuRaw, memRaw] = splitRow(text, ALIBABA_COLUMNS);
    const taskName = name(taskRaw, 'task_name');
    const job = name(jobRaw, 'job_name');
    const count = integer(instanceRaw, 'instance_num');
    if (count < 1) throw new RowError(`instance_num ${count} is below 1`);
    const start = optional(startRaw, 'start_time', decimal);
    const end = optional(endRaw, 'end_time', decimal);
    const planCpu = decimal(cpuRaw, 'plan_cpu');
    const planMem = atMost(decimal(memRaw, 'plan_mem'), 100, 'plan_mem');

    const task: Omit<TraceSubmission, 'taskId'> = {
      line,
      time: start ?? 0,
      job,
      role: taskType === '' ? 'default' : taskType,
      priority: 0,
      cpus: planCpu / 100, // plan_cpu 100 = one core
      memMiB: shareToMiB(planMem / 100, machineMemMiB, 1),
      diskMiB: 0,
      distinctHosts: false,
    };
    if (start !== undefined && end !== undefined && end > start) task.durationSec = end - start;
    return instances(task, ids.next(`${job}/${taskName}`), count);
  };
}
