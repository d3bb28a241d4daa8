/**
 * An agent's work dir takes one agent process, and an agent stopped by SIGTERM hands its tasks back rather than
 * failing them: it tells the master it is leaving (nothing new is placed on it), kills its tasks and reports them
 * LOST (agent_stopped), which the master reschedules without spending a batch retry. Real `borealis agent`
 * processes (through tsx) against an in-process master with its HTTP API and agent endpoint.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { Master } from '../../src/master/index.js';
import { apiFixture } from '../api/helpers.js';
import { type AgentProc, Cleanup, makeTempDir, spawnAgent, stopAgents, waitFor } from './helpers.js';

const fx = apiFixture();
const cleanup = new Cleanup();

const procs: AgentProc[] = [];

afterAll(async () => {
  await stopAgents(procs);
  await cleanup.run();
});

function startAgent(master: string, workDir: string): AgentProc {
  const a = spawnAgent(
    [
      '--master', master,
      '--resources', 'cpus=1,mem=512Mi,disk=1Gi,gpus=0',
      // Below the ephemeral range and away from the other suites' task ports (see orphans.test.ts, e2e).
      '--ports', '26200-26209',
      '--advertise-ip', '127.0.0.1',
      '--work-dir', workDir,
      '--isolation', 'rss-poll',
    ],
    cleanup,
  );
  procs.push(a);
  return a;
}

const tasksOf = (m: Master, job: string) => m.listTasks(job).sort((a, b) => a.attempt - b.attempt);

describe('one agent per work dir', () => {
  it('refuses a second agent on a work dir in use, naming the holder, and lets one in after stop', async () => {
    const workDir = cleanup.dir(await makeTempDir('agent-lock'));
    const opts = { master: '127.0.0.1:9', resources: 'cpus=1,mem=64Mi,disk=64Mi,gpus=0', workDir, isolation: 'rss-poll' as const, logger: () => undefined };
    const first = await Agent.start(opts);
    try {
      const err = await Agent.start(opts).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'BRL_ERR_WORK_DIR_LOCKED', holderPid: process.pid });
      expect((err as Error).message).toContain(`pid ${process.pid}`);
    } finally {
      await first.stop({ killTasks: true });
    }
    const again = await Agent.start(opts);
    await again.stop({ killTasks: true });
  });
});

describe('a real agent process stopped with SIGTERM under a batch task', () => {
  it('reports the task lost; the job does not fail and the instance runs again', async () => {
    const { master, addr } = await fx.start({ heartbeatIntervalMs: 200, heartbeatTimeoutMs: 30_000 });
    const workDir = cleanup.dir(await makeTempDir('agent-sigterm'));
    const first = startAgent(addr, workDir);
    await waitFor(() => master.listAgents().length === 1, 'the agent to register', 30_000);

    // A second agent process on the same work dir is refused before it registers, naming the first one.
    const second = startAgent(addr, workDir);
    expect(await second.exited).not.toBe(0);
    const refusal = second.log.join('\n');
    expect(refusal).toContain('BRL_ERR_WORK_DIR_LOCKED');
    expect(refusal).toContain(`pid ${first.child.pid}`);
    expect(refusal).not.toMatch(/^\s+at /m); // a message, not a stack trace
    expect(master.listAgents()).toHaveLength(1);

    await master.submitJob({ name: 'crunch', type: 'batch', instances: 1, command: 'sleep 600', resources: { cpus: 0.1, mem: 32 } });
    await waitFor(() => tasksOf(master, 'crunch')[0]?.state === 'running', 'crunch.0.0 running');

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const lost = tasksOf(master, 'crunch')[0]!;
    expect(lost).toMatchObject({ id: 'crunch.0.0', state: 'lost', reason: 'agent_stopped' });
    expect(master.getJob('crunch').state).toBe('running');
    // The agent said it was leaving before it killed the task: the replacement was not placed on it.
    await waitFor(() => tasksOf(master, 'crunch').length === 2, 'a replacement attempt');
    expect(tasksOf(master, 'crunch')[1]).toMatchObject({ id: 'crunch.0.1', state: 'pending' });

    // The next run of the agent on the work dir (the lock was released) takes the instance.
    const third = startAgent(addr, workDir);
    await waitFor(() => tasksOf(master, 'crunch')[1]?.state === 'running', 'crunch.0.1 running', 30_000);
    expect(tasksOf(master, 'crunch').map((t) => t.id)).toEqual(['crunch.0.0', 'crunch.0.1']);
    expect(master.getJob('crunch').state).toBe('running');
    await master.killJob('crunch');
    await waitFor(() => tasksOf(master, 'crunch')[1]?.state === 'killed', 'crunch.0.1 killed');
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  });
});
