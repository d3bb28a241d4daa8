import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TaskRunner } from '../../src/agent/executor/task-runner.js';
import type { TaskRunnerOptions } from '../../src/agent/executor/task-runner.js';
import type { TaskSpec, TaskState } from '../../src/agent/executor/types.js';
import { detectIsolator } from '../../src/agent/isolation/detect.js';
import type { Detection } from '../../src/agent/isolation/detect.js';
import { RssPollIsolator } from '../../src/agent/isolation/rss-poll.js';
import { isAlive } from '../../src/agent/isolation/proc.js';
import { isBorealisError, ErrorCodes } from '../../src/api/errors.js';
import { Cleanup, freePort, makeTempDir, readIfExists, waitFor } from './helpers.js';

const NODE = process.execPath;
const LIMITS = { memMiB: 256, cpusMilli: 500 };

/**
 * Touches 4 MiB per tick (fill(1), so pages are really resident: a zeroed Buffer may stay unbacked) up to 1 GiB,
 * then exits 3 after a pause: if isolation ever failed, the test sees 'exited' instead of hanging.
 */
const HOG =
  'const a=[];let n=0;const t=setInterval(()=>{a.push(Buffer.alloc(4<<20,1));' +
  'if(++n>=256){clearInterval(t);setTimeout(()=>process.exit(3),5000)}},2);';

let detection: Detection;
let workDir: string;
const cleanup = new Cleanup();
let seq = 0;

beforeAll(async () => {
  detection = await detectIsolator({ agentId: `test-runner-${process.pid}` });
  workDir = await makeTempDir('runner');
});

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  await detection?.isolator.close();
  await cleanup.dir(workDir);
  await cleanup.run();
});

function spec(command: TaskSpec['command'], extra: Partial<TaskSpec> = {}): TaskSpec {
  return { taskId: `t${++seq}-${process.pid}`, job: 'test-job', command, limits: LIMITS, ...extra };
}

function runner(s: TaskSpec, opts: Partial<TaskRunnerOptions> = {}): TaskRunner {
  return cleanup.runner(new TaskRunner(s, { workDir, isolator: detection.isolator, usageIntervalMs: 50, ...opts }));
}

function recordStates(r: TaskRunner): TaskState[] {
  const states: TaskState[] = [];
  r.on('state', (s) => states.push(s));
  return states;
}

async function stdoutOf(r: TaskRunner): Promise<string> {
  return readFile(path.join(r.sandbox, 'stdout'), 'utf8');
}

async function waitForOutput(r: TaskRunner, text: string): Promise<void> {
  await waitFor(async () => (await readIfExists(path.join(r.sandbox, 'stdout'))).includes(text), `"${text}" on stdout`);
}

describe('TaskRunner: commands', () => {
  it('runs an argv command with no shell in between', async () => {
    const r = runner(spec({ argv: ['printf', '%s|', 'a b', '$HOME', ';', '*'] }));
    const states = recordStates(r);
    await r.start();
    const result = await r.exited;
    expect(result).toMatchObject({ exitCode: 0, signal: null, reason: 'exited' });
    expect(await stdoutOf(r)).toBe('a b|$HOME|;|*|');
    expect(states).toEqual(['starting', 'running', 'exited']);
  });

  it('runs a shell string through /bin/sh -c, with stdout, stderr and the exit code', async () => {
    const r = runner(spec({ shell: 'echo "$((1 + 2))"; echo oops >&2; exit 7' }));
    await r.start();
    expect(await r.exited).toMatchObject({ exitCode: 7, signal: null, reason: 'exited' });
    expect(await stdoutOf(r)).toBe('3\n');
    expect(await readFile(path.join(r.sandbox, 'stderr'), 'utf8')).toBe('oops\n');
  });

  it('keeps stdout bounded: past maxLogBytes the file moves to stdout.1 and the task writes on into an empty one', async () => {
    const r = runner(spec({ shell: "head -c 200000 /dev/zero | tr '\\0' x; sleep 0.5; echo tail; sleep 30" }), { maxLogBytes: 64 * 1024 });
    await r.start();
    const previous = path.join(r.sandbox, 'stdout.1');
    await waitFor(async () => (await readIfExists(previous)).length > 64 * 1024, 'the big output rotated to stdout.1');
    await waitForOutput(r, 'tail');
    // The task's appends landed at the start of the emptied file, not after a hole of NULs as long as what
    // was moved out. (A usage sample may land while the 200,000 bytes are still being written: then what
    // came after the rotation stays in the emptied file, before "tail".)
    const now = await stdoutOf(r);
    expect(now.endsWith('tail\n')).toBe(true);
    expect(now.slice(0, -'tail\n'.length).replaceAll('x', '')).toBe('');
    expect(now.length).toBeLessThan(200_000);
    expect((await readFile(previous, 'utf8')).replaceAll('x', '')).toBe('');
  });

  it('refuses a maxLogBytes below 1 KiB', () => {
    expect(() => new TaskRunner(spec({ argv: ['true'] }), { workDir, isolator: detection.isolator, maxLogBytes: 10 })).toThrow(/maxLogBytes/);
  });

  it('gives the task its sandbox as cwd and only the job env plus PATH, ports and BOREALIS_*', async () => {
    const [p0, p1] = [await freePort(), await freePort()];
    const s = spec(
      { argv: [NODE, '-e', 'process.stdout.write(JSON.stringify({cwd: process.cwd(), env: process.env}))'] },
      { env: { GREETING: 'hello world', BOREALIS_JOB: 'spoofed' }, ports: [p0, p1] },
    );
    const r = runner(s);
    await r.start();
    expect((await r.exited).reason).toBe('exited');
    const { cwd, env } = JSON.parse(await stdoutOf(r)) as { cwd: string; env: Record<string, string> };
    expect(cwd).toBe(r.sandbox);
    expect(r.sandbox).toBe(path.join(workDir, s.taskId));
    expect(existsSync(path.join(r.sandbox, 'stderr'))).toBe(true);
    expect(env).toEqual({
      PATH: process.env.PATH,
      GREETING: 'hello world',
      PORT: String(p0),
      PORT0: String(p0),
      PORT1: String(p1),
      BOREALIS_TASK_ID: s.taskId,
      BOREALIS_JOB: 'test-job',
      BOREALIS_SANDBOX: r.sandbox,
      PWD: r.sandbox, // exported by the launch trampoline's /bin/sh, as by any POSIX shell
    });
  });

  it('samples usage through the isolator while the task runs', async () => {
    const r = runner(spec({ argv: [NODE, '-e', 'setTimeout(() => {}, 30000); console.log("up")'] }));
    let samples = 0;
    r.on('usage', () => samples++);
    await r.start();
    await waitFor(() => samples >= 2 && (r.usage?.rssBytes ?? 0) > 0, 'two usage samples');
    const result = await r.kill();
    expect(result.reason).toBe('killed');
    expect(result.usage?.rssBytes).toBeGreaterThan(0);
  });
});

describe('TaskRunner: kill', () => {
  it('stops a task with SIGTERM to its group', async () => {
    const r = runner(spec({ argv: ['sleep', '30'] }));
    const states = recordStates(r);
    await r.start();
    const result = await r.kill();
    expect(result).toMatchObject({ exitCode: null, signal: 'SIGTERM', reason: 'killed' });
    expect(states).toEqual(['starting', 'running', 'killing', 'exited']);
    expect(isAlive(r.pid!)).toBe(false);
  });

  it('escalates to SIGKILL when the task ignores SIGTERM', async () => {
    const r = runner(spec({ shell: 'trap "" TERM; echo ready; sleep 30' }), { killGracePeriodMs: 200 });
    await r.start();
    await waitForOutput(r, 'ready'); // the trap is in place
    expect(await r.kill()).toMatchObject({ exitCode: null, signal: 'SIGKILL', reason: 'killed' });
  });

  it('kills grandchildren with the group, even ones that ignore SIGTERM', async () => {
    const r = runner(
      spec({ shell: 'trap "" TERM; sleep 30 & echo $! > gc.pid; sleep 31 & echo $! >> gc.pid; echo ready; wait' }),
      { killGracePeriodMs: 200 },
    );
    await r.start();
    await waitForOutput(r, 'ready');
    const grandchildren = (await readFile(path.join(r.sandbox, 'gc.pid'), 'utf8')).trim().split('\n').map(Number);
    for (const pid of grandchildren) cleanup.pid(pid);
    expect(grandchildren).toHaveLength(2);
    expect(grandchildren.every(isAlive)).toBe(true);
    expect(await r.kill()).toMatchObject({ signal: 'SIGKILL', reason: 'killed' });
    await waitFor(() => !grandchildren.some(isAlive), 'grandchildren to die');
  });

  it('kills what is left in the group when the leader exits on its own', async () => {
    const r = runner(spec({ shell: 'sleep 30 & echo $! > gc.pid; exit 0' }));
    await r.start();
    expect((await r.exited).reason).toBe('exited');
    const pid = Number((await readFile(path.join(r.sandbox, 'gc.pid'), 'utf8')).trim());
    cleanup.pid(pid);
    await waitFor(() => !isAlive(pid), 'the orphaned child to die');
  });

  it('never spawns a task killed before start', async () => {
    const r = runner(spec({ argv: ['sleep', '30'] }));
    expect(await r.kill()).toMatchObject({ reason: 'killed', exitCode: null, signal: null });
    expect(r.pid).toBeUndefined();
    expect(r.state).toBe('exited');
  });

  it('reports unhealthy as the reason when killed for it', async () => {
    const r = runner(spec({ argv: ['sleep', '30'] }));
    await r.start();
    expect(await r.kill('unhealthy')).toMatchObject({ reason: 'unhealthy', signal: 'SIGTERM' });
  });
});

describe('TaskRunner: failed_to_start', () => {
  it('reports a missing argv command instead of throwing', async () => {
    const r = runner(spec({ argv: ['borealis-no-such-command-xyz', '--flag'] }));
    const states = recordStates(r);
    await r.start();
    const result = await r.exited;
    expect(result).toMatchObject({ reason: 'failed_to_start', exitCode: null, signal: null });
    expect(result.message).toMatch(/not found.*borealis-no-such-command-xyz/);
    expect(states).toEqual(['starting', 'exited']);
  });

  it('reports a sandbox that cannot be created', async () => {
    const file = path.join(workDir, 'not-a-directory');
    await writeFile(file, 'x');
    const r = runner(spec({ argv: ['true'] }), { workDir: file });
    await r.start();
    const result = await r.exited;
    expect(result.reason).toBe('failed_to_start');
    expect(result.message).toMatch(/sandbox/);
  });

  it('refuses a bad spec or a second start with BorealisErrors', async () => {
    const bad = (): TaskRunner =>
      new TaskRunner(spec({ argv: [] }, { ports: [70000], env: { 'A=B': 'x' } }), { workDir, isolator: detection.isolator });
    expect(bad).toThrow();
    try {
      bad();
    } catch (err) {
      expect(isBorealisError(err) && err.code).toBe(ErrorCodes.INVALID_ARGUMENT);
      expect(isBorealisError(err) && err.problems.map((p) => p.path).sort()).toEqual(['command.argv', 'env.A=B', 'ports[0]']);
    }
    expect(() => runner(spec({ argv: ['true'] }, { taskId: '../escape' }))).toThrow(/task id/);
    const r = runner(spec({ argv: ['true'] }));
    await r.start();
    expect(() => r.start()).toThrow(/already started/);
    await r.exited;
  });
});

describe('TaskRunner: memory limit', () => {
  it(`ends a memory hog with reason oom under the detected isolator`, async () => {
    const r = runner(spec({ argv: [NODE, '-e', HOG] }, { limits: { memMiB: 64, cpusMilli: 1000 } }));
    await r.start();
    const result = await r.exited;
    expect(result.reason, `isolator ${detection.summary}: ${JSON.stringify(result)}`).toBe('oom');
    expect(result.message).toMatch(/64 MiB/);
  });

  it('ends the task with reason oom when only a child of the leader is OOM-killed', async () => {
    const r = runner(
      spec({ shell: `"${NODE}" -e '${HOG}'; echo survived; sleep 30` }, { limits: { memMiB: 64, cpusMilli: 1000 } }),
    );
    await r.start();
    const result = await r.exited;
    expect(result.reason, `isolator ${detection.summary}: ${JSON.stringify(result)}`).toBe('oom');
  });

  it('ends a memory hog with reason oom under the forced rss-poll isolator', async () => {
    const rss = new RssPollIsolator({ intervalMs: 50 });
    const r = runner(spec({ argv: [NODE, '-e', HOG] }, { limits: { memMiB: 64, cpusMilli: 1000 } }), { isolator: rss });
    await r.start();
    const result = await r.exited;
    expect(result).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
    expect(result.message).toMatch(/rss-poll/);
  });
});
