/**
 * Google cluster-data 2011 task_events:
 *   timestamp, missing info, job ID, task index, machine ID, event type, user, scheduling class,
 *   priority, CPU request, memory request, disk space request, different-machines restriction
 * Only SUBMIT events become submissions; requests are shares of the largest machine and are scaled
 * back by the reference machine in the options. Task ids are `<job>/<index>`, `#n` for the nth submit.
 */

import { RowError, TaskIds, atMost, decimal, integer, optional, shareToMiB, splitRow, type RowParser } from './row.js';
import type { TraceReadOptions } from './types.js';

export const GOOGLE_COLUMNS = 13;
export const GOOGLE_DEFAULT_CPUS = 64;
export const GOOGLE_DEFAULT_MEM_MIB = 96 * 1024;
export const GOOGLE_DEFAULT_DISK_MIB = 2 * 1024 * 1024;

const SUBMIT = 0;
const LAST_EVENT_TYPE = 8; // UPDATE_RUNNING
/** 2^63-1 stamps events after the trace window; kept as text since it is beyond double precision. */
const AFTER_END = '9223372036854775807';
const ID_RE = /^\d+$/;

function id(raw: string, column: string): string {
  if (raw === '') throw new RowError(`${column} is empty`);
  if (!ID_RE.test(raw)) throw new RowError(`${column} ${JSON.stringify(raw)} is not an id`);
  return raw;
}

function flag(raw: string, column: string): boolean {
  if (raw === '' || raw === '0') return false;
  if (raw === '1') return true;
  throw new RowError(`${column} ${JSON.stringify(raw)} is not 0 or 1`);
}

export function googleParser(opts: TraceReadOptions): RowParser {
  const machineCpus = opts.machineCpus ?? GOOGLE_DEFAULT_CPUS;
  const machineMemMiB = opts.machineMemMiB ?? GOOGLE_DEFAULT_MEM_MIB;
  const machineDiskMiB = opts.machineDiskMiB ?? GOOGLE_DEFAULT_DISK_MIB;
  const ids = new TaskIds();

  return (text, line) => {
    const [tsRaw, , jobRaw, indexRaw, , typeRaw, user, , prioRaw, cpuRaw, memRaw, diskRaw, diffRaw] = splitRow(
      text,
      GOOGLE_COLUMNS,
    );
    const type = integer(typeRaw, 'event type');
    if (type > LAST_EVENT_TYPE) throw new RowError(`event type ${type} is unknown`);
    if (type !== SUBMIT || tsRaw === AFTER_END) return 'skip';

    const micros = integer(tsRaw, 'timestamp');
    const job = id(jobRaw, 'job ID');
    const index = integer(indexRaw, 'task index');
    const priority = optional(prioRaw, 'priority', integer) ?? 0;
    const cpu = atMost(decimal(cpuRaw, 'CPU request'), 1, 'CPU request');
    const mem = atMost(decimal(memRaw, 'memory request'), 1, 'memory request');
    const disk = atMost(optional(diskRaw, 'disk request', decimal) ?? 0, 1, 'disk request');
    const distinctHosts = flag(diffRaw, 'different-machines');

    // Last, so a bad row does not use up a resubmission number.
    const taskId = ids.next(`${job}/${index}`);
    return [
      {
        line,
        time: micros / 1e6, // 0 means "before trace start", which is time 0 for a replay
        taskId,
        job,
        role: user === '' ? 'default' : user,
        priority,
        cpus: cpu * machineCpus,
        memMiB: shareToMiB(mem, machineMemMiB, 1),
        diskMiB: shareToMiB(disk, machineDiskMiB, 0),
        distinctHosts,
      },
    ];
  };
}
