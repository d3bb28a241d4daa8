import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { detectIsolator } from '../../src/agent/isolation/detect.js';
import type { Detection } from '../../src/agent/isolation/detect.js';
import { CgroupV1Isolator } from '../../src/agent/isolation/cgroup-v1.js';
import { CgroupV2Isolator, formatCpuMax } from '../../src/agent/isolation/cgroup-v2.js';
import { parseKeyedCounters, parseMountinfo, v1Hierarchies, v2MountPoint } from '../../src/agent/isolation/cgroupfs.js';
import { cfsQuotaFor, checkLimits, checkTaskId, cpuSharesFor, cpuWeightFor } from '../../src/agent/isolation/limits.js';
import { isAlive, parseProcStat, taskProcesses } from '../../src/agent/isolation/proc.js';
import type { ProcStat } from '../../src/agent/isolation/proc.js';
import { RssPollIsolator } from '../../src/agent/isolation/rss-poll.js';
import { ErrorCodes, isBorealisError } from '../../src/api/errors.js';
import { Cleanup, makeTempDir, waitFor } from './helpers.js';

const cleanup = new Cleanup();
let detection: Detection;

beforeAll(async () => {
  detection = await detectIsolator({ agentId: `test-iso-${process.pid}` });
  // What the agent would log at start.
  console.log(`isolation: ${detection.summary} -- ${detection.reason}`);
});

afterAll(async () => {
  await detection?.isolator.close();
  await cleanup.run();
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isBorealisError(err) ? err.code : `not a BorealisError: ${String(err)}`;
  }
  return undefined;
}

/**
 * A detached `sleep` (its own process group, like a task), held on stdin until go() so that it can be attached
 * before it execs, as the executor does: cgroup v1 charges memory to where pages are first touched, and moving a
 * running process does not move its charge.
 */
function sleeper(): { pid: number; go: () => void } {
  const child = spawn('/bin/sh', ['-c', 'read -r _; exec sleep 30'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  child.unref();
  cleanup.pid(child.pid!);
  return { pid: child.pid!, go: () => child.stdin!.end('go\n') };
}

describe('limits', () => {
  it('maps millicores to v1 shares, v2 weight and a CFS quota', () => {
    expect(cpuSharesFor(1000)).toBe(1024);
    expect(cpuSharesFor(250)).toBe(256);
    expect(cpuSharesFor(1)).toBe(2); // kernel minimum
    expect(cpuWeightFor(1000)).toBe(100);
    expect(cpuWeightFor(2500)).toBe(250);
    expect(cpuWeightFor(1)).toBe(1);
    expect(cfsQuotaFor(1500)).toBe(150_000);
    expect(cfsQuotaFor(1)).toBe(1_000); // kernel minimum
    expect(formatCpuMax(500)).toBe('50000 100000');
  });

  it('refuses bad limits and unsafe task ids with stable codes', () => {
    expect(codeOf(() => checkLimits({ memMiB: 0, cpusMilli: 100 }))).toBe(ErrorCodes.BAD_RESOURCES);
    expect(codeOf(() => checkLimits({ memMiB: 1.5, cpusMilli: 100 }))).toBe(ErrorCodes.BAD_RESOURCES);
    for (const id of ['', '..', '../x', 'a/b', '.hidden', '-flag']) {
      expect(codeOf(() => checkTaskId(id))).toBe(ErrorCodes.INVALID_ARGUMENT);
    }
    expect(checkTaskId('web.prod-3:abc@1')).toBe('web.prod-3:abc@1');
  });
});

describe('cgroupfs parsing', () => {
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
    '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
    '41 31 0:38 / /sys/fs/cgroup/my\\040unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
  ].join('\n');

  it('finds v1 hierarchies (co-mounted controllers share a mount) and the v2 mount', () => {
    const mounts = parseMountinfo(mountinfo);
    const v1 = v1Hierarchies(mounts);
    expect(v1.get('memory')).toBe('/sys/fs/cgroup/memory');
    expect(v1.get('cpu')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(v1.get('cpuacct')).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(v1.has('name=systemd')).toBe(false);
    expect(v2MountPoint(mounts)).toBe('/sys/fs/cgroup/my unified');
  });

  it('reads flat keyed counters', () => {
    const events = parseKeyedCounters('low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n');
    expect(events.get('oom_kill')).toBe(1);
    expect(events.get('max')).toBe(12);
  });
});

describe('/proc parsing', () => {
  it('parses stat lines whose command name holds spaces and parentheses', () => {
    const line =
      '4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 100 1000000 300 18446744073709551615';
    expect(parseProcStat(line)).toEqual({
      pid: 4242,
      state: 'S',
      ppid: 1,
      pgrp: 4242,
      cpuSeconds: 3,
      childCpuSeconds: 0.1,
      rssPages: 300,
      startTicks: 100,
    });
  });

  it('collects a task as its ppid tree plus its process group, without zombies', () => {
    const p = (pid: number, ppid: number, pgrp: number, state = 'S'): ProcStat => ({
      pid,
      ppid,
      pgrp,
      state,
      cpuSeconds: 0,
      childCpuSeconds: 0,
      rssPages: 1,
      startTicks: 0,
    });
    const table = [
      p(1, 0, 1),
      p(100, 1, 100), // task leader
      p(101, 100, 100), // child
      p(102, 101, 555), // grandchild that moved to its own group
      p(103, 1, 100), // orphan still in the task's group
      p(104, 100, 100, 'Z'), // zombie
      p(200, 1, 200), // someone else
    ];
    expect(taskProcesses(table, 100, 100).map((x) => x.pid).sort()).toEqual([100, 101, 102, 103]);
  });
});

describe('detectIsolator', () => {
  it('reports which isolator it picked and why', () => {
    expect(['cgroup-v1', 'cgroup-v2', 'rss-poll']).toContain(detection.name);
    expect(detection.isolator.name).toBe(detection.name);
    expect(detection.summary).toBe(`${detection.name} (${detection.isolator.controllers.join(',')})`);
    expect(detection.attempts.at(-1)).toMatchObject({ name: detection.name, ok: true });
    // Every better isolator that was passed over says why.
    for (const a of detection.attempts.slice(0, -1)) expect(a.reason).not.toBe('');
    if (detection.name !== 'rss-poll') expect(detection.isolator.controllers).toContain('memory');
  });

  it('can be limited to rss-poll, and refuses an empty choice', async () => {
    const forced = await detectIsolator({ agentId: 'forced', allow: ['rss-poll'] });
    expect(forced.summary).toBe('rss-poll (procfs)');
    await expect(detectIsolator({ agentId: 'x', allow: [] })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
  });
});

describe('the detected isolator on a real process', () => {
  it('confines, measures and destroys', async () => {
    const iso = detection.isolator;
    const handle = await iso.prepare(`iso-${process.pid}`, { memMiB: 128, cpusMilli: 250 });
    const { pid, go } = sleeper();
    try {
      await iso.attach(handle, pid);
      go();
      await waitFor(async () => (await iso.usage(handle)).rssBytes > 0, 'memory to be charged');
      expect(await iso.wasOomKilled(handle)).toBe(false);

      if (iso instanceof CgroupV1Isolator) {
        const memDir = iso.dirOf(handle, 'memory')!;
        expect(memDir).toBe(path.join(iso.memoryRoot, handle.taskId));
        expect(await iso.pids(handle)).toEqual([pid]);
        expect(Number(await readFile(path.join(memDir, 'memory.limit_in_bytes'), 'utf8'))).toBe(128 * 1024 * 1024);
        const cpuDir = iso.dirOf(handle, 'cpu');
        expect(cpuDir !== undefined).toBe(iso.controllers.includes('cpu'));
        if (cpuDir !== undefined) {
          expect((await readFile(path.join(cpuDir, 'cpu.shares'), 'utf8')).trim()).toBe('256');
          expect((await readFile(path.join(cpuDir, 'cpu.cfs_quota_us'), 'utf8')).trim()).toBe('25000');
        }
        await iso.destroy(handle);
        expect(existsSync(memDir)).toBe(false);
        if (cpuDir !== undefined) expect(existsSync(cpuDir)).toBe(false);
        await waitFor(() => !isAlive(pid), 'the straggler to be killed by destroy');
      } else if (iso instanceof CgroupV2Isolator) {
        const dir = path.join(iso.mountPoint, iso.root, handle.taskId);
        expect(await iso.pids(handle)).toEqual([pid]);
        expect(Number(await readFile(path.join(dir, 'memory.max'), 'utf8'))).toBe(128 * 1024 * 1024);
        await iso.destroy(handle);
        expect(existsSync(dir)).toBe(false);
        await waitFor(() => !isAlive(pid), 'the straggler to be killed by destroy');
      } else {
        // rss-poll leaves killing to the executor (see destroy's comment).
        await iso.destroy(handle);
      }
    } finally {
      await iso.destroy(handle); // a failed assertion must not leave a cgroup behind
    }
    await iso.destroy(handle); // twice is harmless
    await expect(iso.usage(handle)).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });
});

describe('rss-poll', () => {
  it('measures a process tree and reports no OOM under the limit', async () => {
    const iso = new RssPollIsolator({ intervalMs: 20 });
    const handle = await iso.prepare(`rss-${process.pid}`, { memMiB: 512, cpusMilli: 100 });
    const { pid, go } = sleeper();
    await iso.attach(handle, pid);
    try {
      go();
      // Right after exec a process can show an RSS of 0 until it touches its first pages.
      await waitFor(async () => (await iso.usage(handle)).rssBytes > 0, 'the tree to show resident memory');
      expect(await iso.wasOomKilled(handle)).toBe(false);
    } finally {
      await iso.destroy(handle);
      process.kill(-pid, 'SIGKILL');
    }
  });

  it('refuses a handle from another isolator', async () => {
    const a = new RssPollIsolator();
    const handle = await a.prepare('t1', { memMiB: 64, cpusMilli: 100 });
    const other = await CgroupV2Isolator.open({ agentId: 'x', mountPoint: await fakeV2Mount() });
    await expect(other.usage(handle)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    await a.destroy(handle);
  });
});

/** A directory shaped like a cgroup2 root, to check what the v2 isolator writes on machines without v2. */
async function fakeV2Mount(): Promise<string> {
  const dir = cleanup.dir(await makeTempDir('fake-cg2'));
  await writeFile(path.join(dir, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  return dir;
}

describe('cgroup-v2 against a fake hierarchy', () => {
  it('enables controllers level by level and writes v2 limits', async () => {
    const mount = await fakeV2Mount();
    const iso = await CgroupV2Isolator.open({ agentId: 'a1', mountPoint: mount });
    expect(iso.controllers).toEqual(['cpu', 'memory']);
    const handle = await iso.prepare('task-1', { memMiB: 64, cpusMilli: 1500 });
    const dir = path.join(mount, 'borealis', 'a1', 'task-1');
    for (const level of [mount, path.join(mount, 'borealis'), path.join(mount, 'borealis', 'a1')]) {
      expect(existsSync(path.join(level, 'cgroup.subtree_control'))).toBe(true);
    }
    expect(await readFile(path.join(dir, 'memory.max'), 'utf8')).toBe(String(64 * 1024 * 1024));
    expect(await readFile(path.join(dir, 'cpu.weight'), 'utf8')).toBe('150');
    expect(await readFile(path.join(dir, 'cpu.max'), 'utf8')).toBe('150000 100000');
    expect(await readFile(path.join(dir, 'memory.oom.group'), 'utf8')).toBe('1');

    await writeFile(path.join(dir, 'memory.current'), '1048576\n');
    await writeFile(path.join(dir, 'cpu.stat'), 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n');
    await writeFile(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n');
    expect(await iso.usage(handle)).toEqual({ rssBytes: 1048576, cpuSeconds: 2.5 });
    expect(await iso.wasOomKilled(handle)).toBe(false);
    await writeFile(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n');
    expect(await iso.wasOomKilled(handle)).toBe(true);
  });

  it('refuses a hierarchy without the memory controller, as on hybrid hosts', async () => {
    const dir = cleanup.dir(await makeTempDir('fake-cg2-hybrid'));
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'cgroup.controllers'), 'hugetlb\n');
    await expect(CgroupV2Isolator.open({ agentId: 'a1', mountPoint: dir })).rejects.toThrow(/memory controller/);
  });
});
