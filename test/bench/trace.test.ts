import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateAlibabaTrace, generateGoogleTrace } from '../../bench/trace/generate.js';
import {
  readTrace,
  streamTrace,
  type TraceEvent,
  type TraceFormat,
  type TraceReadResult,
  type TraceSubmission,
} from '../../bench/trace/index.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/traces/${name}`, import.meta.url));
const ALIBABA = fixture('alibaba_batch_task.csv');
const GOOGLE = fixture('google_task_events.csv');
const U1 = 'fJYeclskJqPWsAT6TX/r9X5OiIZpSEb2PBGliYAOMxM=';
const U2 = '70s3v5qRyCO/1PCdI6fVXnrW8FU/w+5CKRSa72xgcIo=';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'borealis-trace-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let seq = 0;
async function readText(text: string | Buffer, format: TraceFormat, ext = '.csv'): Promise<TraceReadResult> {
  const file = join(dir, `t${seq++}${ext}`);
  await writeFile(file, text);
  return readTrace(file, format);
}

const byLine = (r: TraceReadResult, line: number): TraceSubmission[] => r.submissions.filter((s) => s.line === line);
const isSortedByTime = (subs: TraceSubmission[]): boolean => subs.every((s, i) => i === 0 || subs[i - 1].time <= s.time);

describe('alibaba-v2018 batch_task', () => {
  it('counts rows, submissions, skipped lines and bad rows of the fixture exactly', async () => {
    const r = await readTrace(ALIBABA, 'alibaba-v2018');
    expect(r.format).toBe('alibaba-v2018');
    expect(r.rows).toBe(30);
    expect(r.skipped).toBe(1); // the blank line 12
    expect(r.badRows).toEqual([
      { line: 8, reason: 'expected 9 columns, got 8' },
      { line: 9, reason: 'plan_cpu is empty' },
      { line: 10, reason: 'instance_num "abc" is not an integer' },
      { line: 11, reason: 'plan_cpu -100 is negative' },
    ]);
    // 25 good rows; lines 2, 3, 16, 18 and 23 hold 2 + 3 + 5 + 2 + 10 instances, the other 20 one each.
    expect(new Set(r.submissions.map((s) => s.line)).size).toBe(25);
    expect(r.submissions).toHaveLength(42);
    expect(new Set(r.submissions.map((s) => s.taskId)).size).toBe(42);
  });

  it('expands instances and de-normalises plan_cpu (100 = 1 core) and plan_mem (% of 96 GiB)', async () => {
    const r = await readTrace(ALIBABA, 'alibaba-v2018');
    const line3 = byLine(r, 3);
    expect(line3.map((s) => s.taskId)).toEqual(['j_1002/M1/0', 'j_1002/M1/1', 'j_1002/M1/2']);
    expect(line3[0]).toEqual({
      line: 3,
      time: 86300,
      taskId: 'j_1002/M1/0',
      job: 'j_1002',
      role: '12',
      priority: 0,
      cpus: 0.5,
      memMiB: Math.ceil(0.015 * 98304), // 1475
      diskMiB: 0,
      distinctHosts: false,
      durationSec: 150,
    });
    expect(byLine(r, 23)).toHaveLength(10);
    expect(byLine(r, 20)[0]).toMatchObject({ cpus: 16, memMiB: Math.ceil(0.455 * 98304) });
    expect(byLine(r, 24)[0].memMiB).toBe(98304); // 100% of the machine
    expect(byLine(r, 25)[0]).toMatchObject({ cpus: 0, memMiB: 1 }); // memory is never below 1 MiB
  });

  it('uses start_time as submit time and sets a duration only when end > start is known', async () => {
    const r = await readTrace(ALIBABA, 'alibaba-v2018');
    const waiting = byLine(r, 13)[0];
    expect(waiting).toMatchObject({ time: 0, role: 'default', taskId: 'j_1009/M1/0' });
    expect(waiting).not.toHaveProperty('durationSec');
    expect(byLine(r, 7)[0]).not.toHaveProperty('durationSec'); // Running, end_time 0
    expect(byLine(r, 22)[0]).not.toHaveProperty('durationSec'); // end == start
    expect(byLine(r, 21)[0].durationSec).toBe(3600);
  });

  it('gives a repeated (job, task) row distinct ids', async () => {
    const r = await readTrace(ALIBABA, 'alibaba-v2018');
    expect(byLine(r, 1)[0].taskId).toBe('j_1001/M1/0');
    expect(byLine(r, 14)[0].taskId).toBe('j_1001/M1#2/0');
  });

  it('sorts by time, keeping file and instance order on ties', async () => {
    const r = await readTrace(ALIBABA, 'alibaba-v2018');
    expect(isSortedByTime(r.submissions)).toBe(true);
    expect(r.submissions.slice(0, 11).map((s) => [s.line, s.time, s.taskId])).toEqual([
      [13, 0, 'j_1009/M1/0'],
      [21, 60, 'j_1013/M1/0'],
      [6, 300, 'j_1003/task_Nzg3ODAwNDgzMTAwNTc5NDEyMA==/0'],
      [16, 1000, 'j_1010/M1/0'],
      [16, 1000, 'j_1010/M1/1'],
      [16, 1000, 'j_1010/M1/2'],
      [16, 1000, 'j_1010/M1/3'],
      [16, 1000, 'j_1010/M1/4'],
      [17, 1000, 'j_1010/M2/0'],
      [18, 1120, 'j_1010/R3_1_2/0'],
      [18, 1120, 'j_1010/R3_1_2/1'],
    ]);
    expect(r.submissions.at(-1)?.line).toBe(7); // start 500000
  });

  it('honours machineMemMiB', async () => {
    const r = await readTrace(ALIBABA, 'alibaba-v2018', { machineMemMiB: 10240 });
    expect(byLine(r, 3)[0].memMiB).toBe(154); // ceil(0.015 * 10240 = 153.6)
  });

  it('stops after limit submissions, counting instances, and reads no further', async () => {
    const r = await readTrace(ALIBABA, 'alibaba-v2018', { limit: 5 });
    // line 1 (1) + line 2 (2) + 2 of line 3's 3 instances, then sorted by time
    expect(r.submissions.map((s) => s.taskId)).toEqual([
      'j_1002/M1/0',
      'j_1002/M1/1',
      'j_1001/M1/0',
      'j_1001/R2_1/0',
      'j_1001/R2_1/1',
    ]);
    expect(r.rows).toBe(3);
    expect(r.badRows).toEqual([]);
    expect((await readTrace(ALIBABA, 'alibaba-v2018', { limit: 1000 })).submissions).toHaveLength(42);
    const none = await readTrace(ALIBABA, 'alibaba-v2018', { limit: 0 });
    expect([none.submissions.length, none.rows]).toEqual([0, 0]);
  });

  it('reports other malformed rows and accepts CRLF files', async () => {
    const text = [
      'task_name,instance_num,job_name,task_type,status,start_time,end_time,plan_cpu,plan_mem', // a header is data here
      'M1,0,j_1,1,Terminated,1,2,100,0.5',
      'M1,1,j_1,1,Terminated,1,2,100,150',
      'M1#2,1,j_1,1,Terminated,1,2,100,0.5',
      'M1,1,,1,Terminated,1,2,100,0.5',
      'M1,1.5,j_1,1,Terminated,1,2,100,0.5',
      'M1,1,j_1,1,Terminated,x,2,100,0.5',
      'M1,1,j_1,1,Terminated,10,20,100,0.5',
      '   ',
    ].join('\r\n');
    const r = await readText(`${text}\r\n`, 'alibaba-v2018');
    expect(r.badRows).toEqual([
      { line: 1, reason: 'instance_num "instance_num" is not an integer' },
      { line: 2, reason: 'instance_num 0 is below 1' },
      { line: 3, reason: 'plan_mem 150 is above 100' },
      { line: 4, reason: `task_name "M1#2" contains '#'` },
      { line: 5, reason: 'job_name is empty' },
      { line: 6, reason: 'instance_num "1.5" is not an integer' },
      { line: 7, reason: 'start_time "x" is not a number' },
    ]);
    expect(r.submissions).toEqual([
      {
        line: 8,
        time: 10,
        taskId: 'j_1/M1/0',
        job: 'j_1',
        role: '1',
        priority: 0,
        cpus: 1,
        memMiB: 492, // ceil(0.005 * 98304 = 491.52)
        diskMiB: 0,
        distinctHosts: false,
        durationSec: 10,
      },
    ]);
    expect([r.rows, r.skipped]).toEqual([9, 1]);
  });
});

describe('google-2011 task_events', () => {
  it('counts rows, submissions, skipped events and bad rows of the fixture exactly', async () => {
    const r = await readTrace(GOOGLE, 'google-2011');
    expect(r.format).toBe('google-2011');
    expect(r.rows).toBe(30);
    // 13 non-SUBMIT events, the blank line 19, and the SUBMIT stamped 2^63-1 (after the trace end)
    expect(r.skipped).toBe(15);
    expect(r.badRows).toEqual([
      { line: 15, reason: 'CPU request is empty' },
      { line: 16, reason: 'memory request is empty' },
      { line: 17, reason: 'CPU request "0.0x3" is not a number' },
      { line: 18, reason: 'expected 13 columns, got 11' },
    ]);
    expect(r.submissions).toHaveLength(11);
    expect(r.rows).toBe(r.submissions.length + r.badRows.length + r.skipped);
  });

  it('de-normalises requests against a 64-core, 96 GiB, 2 TiB machine', async () => {
    const r = await readTrace(GOOGLE, 'google-2011');
    expect(byLine(r, 5)).toEqual([
      {
        line: 5,
        time: 600,
        taskId: '6251812952/0',
        job: '6251812952',
        role: U2,
        priority: 0,
        cpus: 4, // 0.0625 * 64
        memMiB: 49152, // 0.5 * 98304
        diskMiB: 2098, // ceil(0.001 * 2097152 = 2097.152)
        distinctHosts: true,
      },
    ]);
    const small = byLine(r, 14)[0];
    expect(small.cpus).toBeCloseTo(0.01562 * 64, 12);
    expect(small).toMatchObject({ memMiB: 1173, diskMiB: 232, role: 'default', priority: 2, distinctHosts: false });
    expect(byLine(r, 20)[0].diskMiB).toBe(0); // empty disk request
    expect(byLine(r, 23)[0]).toMatchObject({ cpus: 16, memMiB: 24576, diskMiB: 4195, priority: 11, role: U1 });
  });

  it('honours the reference machine options', async () => {
    const r = await readTrace(GOOGLE, 'google-2011', { machineCpus: 32, machineMemMiB: 65536, machineDiskMiB: 1024 });
    expect(byLine(r, 5)[0]).toMatchObject({ cpus: 2, memMiB: 32768, diskMiB: 2 });
  });

  it('sorts by time and numbers resubmissions of the same task', async () => {
    const r = await readTrace(GOOGLE, 'google-2011');
    expect(r.submissions.map((s) => [s.line, s.time, s.taskId])).toEqual([
      [1, 0, '3418309/0'],
      [3, 0, '3418309/1'],
      [30, 599, '6252000002/0'],
      [5, 600, '6251812952/0'],
      [6, 600, '6251812952/1'],
      [10, 605.000001, '6251812952/0#2'],
      [13, 620.5, '6251812952/0#3'],
      [14, 630, '6251845012/0'],
      [20, 640, '6251845012/5'],
      [22, 660, '6251845012/1'], // its line-15 SUBMIT was bad, so this is its first accepted one
      [23, 700, '6252000000/0'],
    ]);
  });

  it('stops after limit submissions', async () => {
    const r = await readTrace(GOOGLE, 'google-2011', { limit: 3 });
    expect(r.submissions.map((s) => s.line)).toEqual([1, 3, 5]);
    expect([r.rows, r.skipped]).toEqual([5, 2]);
  });

  it('reports unknown event types and bad SUBMIT fields, but not fields of other events', async () => {
    const row = (ts: string, type: string, tail: string): string => `${ts},,42,0,,${type},u,0,1,${tail}`;
    const text = [
      row('1000000', '9', '0.1,0.1,0,0'),
      row('1000000', 'x', '0.1,0.1,0,0'),
      row('1000000', '4', 'junk,,,7'), // FINISH: skipped whatever its fields
      row('1000000', '0', '0.1,0.1,0,2'),
      row('1000000', '0', '1.5,0.1,0,0'),
      row('-5', '0', '0.1,0.1,0,0'),
      row('', '0', '0.1,0.1,0,0'),
      '1000000,,42,,,0,u,0,1,0.1,0.1,0,0',
      row('2500000', '0', '0.1,0.1,0,0'),
    ].join('\n');
    const r = await readText(text, 'google-2011');
    expect(r.badRows).toEqual([
      { line: 1, reason: 'event type 9 is unknown' },
      { line: 2, reason: 'event type "x" is not an integer' },
      { line: 4, reason: 'different-machines "2" is not 0 or 1' },
      { line: 5, reason: 'CPU request 1.5 is above 1' },
      { line: 6, reason: 'timestamp -5 is negative' },
      { line: 7, reason: 'timestamp is empty' },
      { line: 8, reason: 'task index is empty' },
    ]);
    expect(r.submissions.map((s) => [s.line, s.time, s.taskId, s.priority])).toEqual([[9, 2.5, '42/0', 1]]);
    expect([r.rows, r.skipped]).toEqual([9, 1]);
  });

  it('reads gzip-compressed parts as downloaded', async () => {
    const gz = await readText(gzipSync(await readFile(GOOGLE)), 'google-2011', '.csv.gz');
    expect(gz).toEqual(await readTrace(GOOGLE, 'google-2011'));
  });
});

describe('streamTrace', () => {
  it('yields submissions and bad rows in file order and returns the line counts', async () => {
    const events: TraceEvent[] = [];
    const it = streamTrace(ALIBABA, 'alibaba-v2018');
    let next = await it.next();
    for (; !next.done; next = await it.next()) events.push(next.value);
    expect(next.value).toEqual({ rows: 30, skipped: 1 });
    expect(events).toHaveLength(46);
    const lines = events.map((e) => e.value.line);
    expect(lines.every((l, i) => i === 0 || lines[i - 1] <= l)).toBe(true);
    expect(events.filter((e) => e.kind === 'bad').map((e) => e.value.line)).toEqual([8, 9, 10, 11]);
    expect(events.slice(9, 15).map((e) => [e.kind, e.value.line])).toEqual([
      ['submission', 7],
      ['bad', 8],
      ['bad', 9],
      ['bad', 10],
      ['bad', 11],
      ['submission', 13],
    ]);
  });

  it('can be abandoned early', async () => {
    let n = 0;
    for await (const e of streamTrace(GOOGLE, 'google-2011')) {
      expect(e.kind).toBe('submission');
      if (++n === 2) break;
    }
    expect(n).toBe(2);
  });
});

describe('refused input', () => {
  it('refuses an unknown format with BRL_ERR_INVALID_ARGUMENT', async () => {
    await expect(readTrace(ALIBABA, 'csv' as TraceFormat)).rejects.toMatchObject({
      name: 'BorealisError',
      code: 'BRL_ERR_INVALID_ARGUMENT',
    });
    await expect(streamTrace(ALIBABA, 'toString' as TraceFormat).next()).rejects.toMatchObject({
      code: 'BRL_ERR_INVALID_ARGUMENT',
    });
  });

  it('refuses a missing file or a directory with BRL_ERR_INVALID_ARGUMENT', async () => {
    await expect(readTrace(join(dir, 'nope.csv'), 'google-2011')).rejects.toMatchObject({
      code: 'BRL_ERR_INVALID_ARGUMENT',
      problems: [{ path: 'file', message: 'does not exist' }],
    });
    await expect(readTrace(dir, 'google-2011')).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
  });

  it('refuses bad options', async () => {
    await expect(readTrace(ALIBABA, 'alibaba-v2018', { limit: -1 })).rejects.toMatchObject({
      code: 'BRL_ERR_INVALID_ARGUMENT',
    });
    await expect(readTrace(GOOGLE, 'google-2011', { machineCpus: 0 })).rejects.toMatchObject({
      code: 'BRL_ERR_INVALID_ARGUMENT',
    });
  });
});

describe('generated traces', () => {
  it('are deterministic from the seed', () => {
    expect(generateAlibabaTrace(300, 7)).toBe(generateAlibabaTrace(300, 7));
    expect(generateGoogleTrace(300, 7)).toBe(generateGoogleTrace(300, 7));
    expect(generateAlibabaTrace(300, 7)).not.toBe(generateAlibabaTrace(300, 8));
    expect(generateGoogleTrace(300, 7)).not.toBe(generateGoogleTrace(300, 8));
    expect(generateAlibabaTrace(0, 1)).toBe('');
    expect(() => generateGoogleTrace(-1, 1)).toThrow(expect.objectContaining({ code: 'BRL_ERR_INVALID_ARGUMENT' }));
  });

  it('alibaba: exact row count, parses with no bad rows, a mix of sizes and multi-instance tasks', async () => {
    const text = generateAlibabaTrace(500, 42);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(500);
    const instances = lines.map((l) => Number(l.split(',')[1]));
    const r = await readText(text, 'alibaba-v2018');
    expect(r.badRows).toEqual([]);
    expect([r.rows, r.skipped]).toEqual([500, 0]);
    expect(r.submissions).toHaveLength(instances.reduce((a, b) => a + b, 0));
    expect(instances.filter((n) => n > 1).length).toBeGreaterThan(10);
    expect(new Set(r.submissions.map((s) => s.taskId)).size).toBe(r.submissions.length);
    expect(isSortedByTime(r.submissions)).toBe(true);
    expect(r.submissions.some((s) => s.cpus <= 1 && s.memMiB < 1024)).toBe(true);
    expect(r.submissions.some((s) => s.cpus >= 8 && s.memMiB > 8192)).toBe(true);
  });

  it('google: exact row count, parses with no bad rows, mixed events, resubmissions and distinct-host tasks', async () => {
    const text = generateGoogleTrace(2000, 42);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2000);
    const types = lines.map((l) => l.split(',')[5]);
    expect(new Set(types).size).toBeGreaterThanOrEqual(7);
    const r = await readText(text, 'google-2011');
    expect(r.badRows).toEqual([]);
    expect(r.rows).toBe(2000);
    expect(r.submissions).toHaveLength(types.filter((t) => t === '0').length);
    expect(r.skipped).toBe(2000 - r.submissions.length);
    expect(new Set(r.submissions.map((s) => s.taskId)).size).toBe(r.submissions.length);
    expect(r.submissions.some((s) => s.taskId.includes('#'))).toBe(true);
    expect(r.submissions.some((s) => s.distinctHosts)).toBe(true);
    expect(r.submissions.some((s) => !s.distinctHosts)).toBe(true);
    expect(r.submissions[0].time).toBe(0);
    expect(r.submissions.every((s) => Number.isInteger(s.memMiB) && s.memMiB >= 1 && s.cpus > 0)).toBe(true);
  });
});
