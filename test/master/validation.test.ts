import { describe, expect, it } from 'vitest';
import { isBorealisError } from '../../src/api/errors.js';
import type { Master } from '../../src/master/index.js';
import type { JobSpec } from '../../src/master/types.js';
import { masterFixture, running, service, waitFor } from './helpers.js';

const fx = masterFixture();

function snapshot(m: Master): unknown {
  return { jobs: m.listJobs(), tasks: m.listTasks(), agents: m.listAgents().map((a) => ({ ...a, lastHeartbeatAt: 0 })), cluster: m.cluster() };
}

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<{ code: string; problems: { path: string; message: string }[] }> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (!isBorealisError(err)) throw err;
    return { code: err.code, problems: err.problems };
  }
  throw new Error('expected a refusal');
}

describe('Master bad input', () => {
  it('refuses every bad request with its code and leaves state unchanged', async () => {
    const m = await fx.open();
    const a = fx.agent({ id: 'a1' });
    await a.connect(m);
    await m.submitJob(service('web', 2));
    await waitFor(() => running(m, 'web').length === 2, 'two running');
    await waitFor(() => a.pendingAcks === 0, 'quiet');
    const before = snapshot(m);
    const events = m.events.lastSeq;

    expect(await refusal(() => m.getJob('nope'))).toMatchObject({ code: 'BRL_ERR_UNKNOWN_JOB' });
    expect(await refusal(m.scaleJob('nope', 3))).toMatchObject({ code: 'BRL_ERR_UNKNOWN_JOB' });
    expect(await refusal(m.killJob('nope'))).toMatchObject({ code: 'BRL_ERR_UNKNOWN_JOB' });
    expect(await refusal(() => m.listTasks('nope'))).toMatchObject({ code: 'BRL_ERR_UNKNOWN_JOB' });
    expect(await refusal(() => m.getTask('web.9.0'))).toMatchObject({ code: 'BRL_ERR_UNKNOWN_TASK' });
    expect(await refusal(m.killTask('web.9.0'))).toMatchObject({ code: 'BRL_ERR_UNKNOWN_TASK' });
    expect(await refusal(m.drainAgent('a9'))).toMatchObject({ code: 'BRL_ERR_UNKNOWN_AGENT' });
    expect(await refusal(m.scaleJob('web', -1))).toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT', problems: [{ path: 'instances' }] });
    expect(await refusal(m.scaleJob('web', 100_001))).toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    expect(await refusal(m.scaleJob('web', 1.5))).toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
    expect(await refusal(m.submitJob(service('web', 1)))).toMatchObject({ code: 'BRL_ERR_DUPLICATE_JOB' });

    const bad = {
      name: 'Bad Name!',
      type: 'cron',
      instances: -2,
      command: [],
      env: { A: 1 },
      resources: { cpus: 'lots', mem: '-1Gi', bogus: 1 },
      constraints: [{ attribute: 'zone', operator: 'like', value: 'a' }, { operator: '=' }],
      priority: 0.5,
      placement: 'random',
      healthCheck: { path: 'health', portIndex: 2 },
      restartPolicy: { maxRetries: -1, backoffMs: 500, maxBackoffMs: 100 },
      killGraceMs: -5,
      colour: 'blue',
    } as unknown as JobSpec;
    const r = await refusal(m.submitJob(bad));
    expect(r.code).toBe('BRL_ERR_INVALID_JOB_SPEC');
    const paths = r.problems.map((p) => p.path).sort();
    expect(paths).toEqual(
      [
        'colour',
        'name',
        'type',
        'instances',
        'command',
        'env.A',
        'resources.bogus',
        'resources.cpus',
        'resources.mem',
        'constraints[0].operator',
        'constraints[1].attribute',
        'priority',
        'placement',
        'healthCheck.path',
        'restartPolicy.maxRetries',
        'restartPolicy.maxBackoffMs',
        'killGraceMs',
      ].sort(),
    );
    expect(await refusal(m.submitJob(null as unknown as JobSpec))).toMatchObject({ code: 'BRL_ERR_INVALID_JOB_SPEC' });
    expect(await refusal(m.submitJob(service('x', 1, { resources: { cpus: 0, mem: 0 } })))).toMatchObject({
      code: 'BRL_ERR_INVALID_JOB_SPEC',
      problems: [{ path: 'resources' }],
    });
    expect(await refusal(m.submitJob(service('x', 1, { healthCheck: { path: '/health' } })))).toMatchObject({
      problems: [{ path: 'healthCheck.portIndex' }],
    });

    expect(snapshot(m)).toEqual(before);
    expect(m.events.lastSeq).toBe(events);
    expect(a.launches).toHaveLength(2);
  });

  it('refuses to open with bad options, naming the option', async () => {
    const dataDir = await fx.tempDir();
    await expect(fx.open({ dataDir, heartbeatTimeoutMs: -1 })).rejects.toThrow(/heartbeatTimeoutMs/);
    await expect(fx.open({ dataDir, heartbeatIntervalMs: 5_000, heartbeatTimeoutMs: 1_000 })).rejects.toThrow(/heartbeatIntervalMs/);
    await expect(fx.open({ dataDir: '' })).rejects.toMatchObject({ code: 'BRL_ERR_INVALID_ARGUMENT' });
  });
});
