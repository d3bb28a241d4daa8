/**
 * Synthetic traces in the public formats, for tests and for benchmarking without the multi-GB
 * downloads. Deterministic from the seed: a seed names one trace on every machine.
 */

import { InvalidArgumentError } from '../../src/api/errors.js';

type Random = () => number;

/** xorshift32 over a scrambled seed (taken as uint32); state 0 would stick at 0. */
function xorshift32(seed: number): Random {
  let s = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  s ^= s >>> 13;
  if (s === 0) s = 0x6d2b79f5;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

const int = (r: Random, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Random, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

function checkRows(rows: number): void {
  if (!(Number.isSafeInteger(rows) && rows >= 0)) {
    throw new InvalidArgumentError('rows must be a non-negative integer', [{ path: 'rows', message: 'must be >= 0' }]);
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function base64ish(r: Random, chars: number): string {
  let s = '';
  for (let i = 0; i < chars; i++) s += B64[Math.floor(r() * 64)];
  return s;
}

/** DAG-style task names as batch_task uses them: M1, M2, R3_1_2 (R3 depends on 1 and 2), J4_3. */
function dagNames(r: Random, n: number): string[] {
  const names: string[] = [];
  for (let i = 1; i <= n; i++) {
    if (i === 1 || r() < 0.4) {
      names.push(`M${i}`);
      continue;
    }
    const deps = new Set([int(r, 1, i - 1), int(r, 1, i - 1)]);
    names.push(`${pick(r, ['R', 'J'])}${i}_${[...deps].sort((a, b) => a - b).join('_')}`);
  }
  return names;
}

/** Mostly small tasks, a tail of large ones: the shape that makes packing interesting. */
function alibabaSize(r: Random): [cpu: string, mem: string] {
  const x = r();
  if (x < 0.7) return [String(pick(r, [50, 50, 100, 100, 100, 150])), (0.05 + r() * 0.95).toFixed(2)];
  if (x < 0.95) return [String(pick(r, [200, 300, 400, 600])), (1 + r() * 4).toFixed(2)];
  return [String(pick(r, [800, 1200, 1600, 2400])), (10 + r() * 40).toFixed(2)];
}

function instanceCount(r: Random): number {
  const x = r();
  if (x < 0.75) return 1;
  if (x < 0.95) return int(r, 2, 10);
  return int(r, 20, 100);
}

/** `rows` lines of batch_task.csv. Rows are grouped by job, so start times are only roughly ordered. */
export function generateAlibabaTrace(rows: number, seed: number): string {
  checkRows(rows);
  const r = xorshift32(seed);
  const out: string[] = [];
  let jobStart = int(r, 0, 600);
  for (let job = 1; out.length < rows; job++) {
    jobStart += int(r, 0, 40);
    const names = r() < 0.15 ? [`task_${base64ish(r, 26)}==`] : dagNames(r, int(r, 1, 6));
    const taskType = pick(r, ['1', '1', '1', '12', '12', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '13']);
    let t = jobStart;
    for (const name of names) {
      if (out.length >= rows) break;
      const [cpu, mem] = alibabaSize(r);
      const start = t + int(r, 0, 20);
      const duration = r() < 0.9 ? int(r, 1, 600) : int(r, 600, 7200);
      const status = r() < 0.92 ? 'Terminated' : pick(r, ['Failed', 'Running', 'Waiting']);
      // Unfinished tasks carry no end time; waiting ones have not started either.
      const end = status === 'Running' || status === 'Waiting' ? 0 : start + duration;
      const startCol = status === 'Waiting' ? 0 : start;
      out.push(`${name},${instanceCount(r)},j_${job},${taskType},${status},${startCol},${end},${cpu},${mem}`);
      t = start + Math.floor(duration / 2);
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

const Event = { SUBMIT: 0, SCHEDULE: 1, EVICT: 2, FAIL: 3, FINISH: 4, KILL: 5, LOST: 6, UPDATE_PENDING: 7, UPDATE_RUNNING: 8 };
/** What happens to a running task; finishing is the common case. */
const ENDINGS = [Event.FINISH, Event.FINISH, Event.FINISH, Event.FAIL, Event.KILL, Event.EVICT, Event.LOST, Event.UPDATE_RUNNING];

interface GTask {
  job: number;
  index: number;
  user: string;
  cls: number;
  prio: number;
  cpu: string;
  mem: string;
  disk: string;
  diff: number;
  machine: number; // 0 while pending
}

function googleSize(r: Random): [cpu: string, mem: string, disk: string] {
  const x = r();
  const cpu = x < 0.6 ? pick(r, [0.00625, 0.0125, 0.01562, 0.03125]) : x < 0.95 ? 0.03 + r() * 0.1 : 0.125 + r() * 0.375;
  const mem = x < 0.6 ? 0.0005 + r() * 0.01 : x < 0.95 ? 0.01 + r() * 0.05 : 0.06 + r() * 0.25;
  return [cpu.toFixed(5), mem.toFixed(5), (0.00001 + r() * 0.002).toFixed(7)];
}

/**
 * `rows` lines of task_events: jobs submit a few tasks, which get scheduled and then finish, fail,
 * get killed, evicted or lost; some evicted or failed tasks are submitted again. The first tasks are
 * stamped 0 (running before the trace started), then time advances from 600 s as in the real trace.
 */
export function generateGoogleTrace(rows: number, seed: number): string {
  checkRows(rows);
  const r = xorshift32(seed);
  const users = Array.from({ length: 8 }, () => `${base64ish(r, 43)}=`);
  const out: string[] = [];
  const pending: GTask[] = [];
  const running: GTask[] = [];
  let now = 0;
  let job = 6_251_000_000 + int(r, 0, 999_999);

  const emit = (t: GTask, type: number): void => {
    const machine = t.machine === 0 ? '' : String(t.machine);
    const row = [now, '', t.job, t.index, machine, type, t.user, t.cls, t.prio, t.cpu, t.mem, t.disk, t.diff];
    out.push(row.join(','));
  };
  const takeRandom = (xs: GTask[]): GTask => xs.splice(Math.floor(r() * xs.length), 1)[0];

  while (out.length < rows) {
    if (out.length > rows / 20 && now === 0) now = 600_000_000;
    else if (now > 0) now += int(r, 0, 2_000_000);
    const x = r();
    if (x < 0.3 || pending.length + running.length === 0) {
      job += int(r, 1, 5000);
      const [cpu, mem, disk] = googleSize(r);
      const shape = { job, user: pick(r, users), cls: int(r, 0, 3), prio: pick(r, [0, 0, 1, 2, 4, 9, 10, 11]) };
      const diff = r() < 0.1 ? 1 : 0;
      const tasks = int(r, 1, 4);
      for (let index = 0; index < tasks && out.length < rows; index++) {
        const t: GTask = { ...shape, index, cpu, mem, disk, diff, machine: 0 };
        emit(t, Event.SUBMIT);
        pending.push(t);
      }
    } else if (x < 0.6 && pending.length > 0) {
      const t = takeRandom(pending);
      if (r() < 0.1) emit(t, Event.UPDATE_PENDING);
      else {
        t.machine = int(r, 1, 6000) * 1000 + int(r, 0, 999);
        emit(t, Event.SCHEDULE);
        running.push(t);
      }
      if (t.machine === 0) pending.push(t);
    } else if (running.length > 0) {
      const t = takeRandom(running);
      const type = pick(r, ENDINGS);
      emit(t, type);
      if (type === Event.UPDATE_RUNNING) running.push(t);
      else if ((type === Event.EVICT || type === Event.FAIL) && r() < 0.7 && out.length < rows) {
        t.machine = 0;
        emit(t, Event.SUBMIT); // resubmission of the same (job, task index)
        pending.push(t);
      }
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
