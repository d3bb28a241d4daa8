import { describe, expect, it } from 'vitest';
import { AgentCloseCode } from '../../src/master/index.js';
import { connectionPair } from '../../src/master/testing/sim-agent.js';
import { decodeMasterMessage, encodeAgentMessage, taskStateToWire } from '../../src/proto/index.js';
import { masterFixture, recordEvents, running, service, waitFor } from './helpers.js';

const fx = masterFixture();

/** A short timeout so failure detection is quick; 20 heartbeats per timeout keep healthy agents inside it even on a loaded CI box. */
const FAST = { heartbeatTimeoutMs: 1_000, heartbeatIntervalMs: 50 };

describe('Master agents', () => {
  it('declares a silent agent lost: its tasks are lost and rescheduled on another agent', async () => {
    const m = await fx.open(FAST);
    const events = recordEvents(m);
    const a = fx.agent({ id: 'a1', cpusMilli: 2000 });
    await a.connect(m);
    await m.submitJob(service('web', 2));
    await waitFor(() => running(m, 'web').length === 2, 'both on a1');
    const b = fx.agent({ id: 'a2', cpusMilli: 2000 });
    await b.connect(m);
    a.silence();
    await waitFor(() => m.listAgents().find((x) => x.id === 'a1')?.state === 'lost', 'a1 lost');
    await waitFor(() => running(m, 'web').length === 2 && running(m, 'web').every((t) => t.agentId === 'a2'), 'both on a2');
    expect(m.getTask('web.0.0').state).toBe('lost');
    expect(m.getTask('web.0.0').reason).toBe('agent_lost');
    expect(running(m, 'web').map((t) => t.id)).toEqual(['web.0.1', 'web.1.1']);
    await waitFor(() => events.some((e) => e.type === 'agent_lost' && e.agentId === 'a1'), 'the agent_lost event');
    expect(a.lastClose?.code).toBe(AgentCloseCode.DECLARED_LOST);
    expect(m.cluster().agents).toEqual({ total: 2, up: 1, draining: 0, lost: 1 });
    expect(m.cluster().total.cpus).toBe(2);

    // It comes back after being declared lost: what it still runs was replaced, so it is killed,
    // and the agent takes placements again.
    const errorsBefore = events.filter((e) => e.type === 'error').length;
    await a.connect(m);
    expect(a.kills.sort()).toEqual(['web.0.0', 'web.1.0']);
    expect(a.tasks.size).toBe(0);
    // A real agent reports the kills it carried out: stale for tasks already lost, so acknowledged quietly.
    a.report('web.0.0', 'killed', { reason: 'killed' });
    await waitFor(() => a.pendingAcks === 0, 'the stale update acknowledged');
    expect(m.getTask('web.0.0').state).toBe('lost');
    expect(events.filter((e) => e.type === 'error')).toHaveLength(errorsBefore);
    expect(m.listAgents().find((x) => x.id === 'a1')?.state).toBe('up');
    await m.scaleJob('web', 4);
    await waitFor(() => running(m, 'web').length === 4, 'four running over both agents');
    expect(running(m, 'web').filter((t) => t.agentId === 'a1')).toHaveLength(2);
  });

  it('reconciles an agent that reconnects within the timeout: nothing is relaunched', async () => {
    const m = await fx.open({ heartbeatTimeoutMs: 5_000, heartbeatIntervalMs: 50 });
    const a = fx.agent({ id: 'a1' });
    await a.connect(m);
    await m.submitJob(service('web', 3));
    await waitFor(() => running(m, 'web').length === 3, 'three running');
    const before = m.listTasks('web');
    a.disconnect();
    await new Promise((r) => setTimeout(r, 100));
    await a.connect(m);
    expect(a.registrations).toBe(2);
    expect(a.kills).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    expect(m.listTasks('web')).toEqual(before);
    expect(a.launches).toHaveLength(3);
    expect(m.listAgents()[0]!.state).toBe('up');
    expect(m.cluster().used.cpus).toBe(3);
  });

  it('on reconnect, a task the master placed there but the agent does not run is lost and replaced', async () => {
    const m = await fx.open({ heartbeatTimeoutMs: 5_000, heartbeatIntervalMs: 50 });
    const a = fx.agent({ id: 'a1' });
    await a.connect(m);
    await m.submitJob(service('web', 2));
    await waitFor(() => running(m, 'web').length === 2, 'two running');
    a.disconnect();
    a.tasks.delete('web.1.0'); // died with nobody to tell
    await a.connect(m);
    await waitFor(() => running(m, 'web').map((t) => t.id).join() === 'web.0.0,web.1.1', 'the missing one replaced');
    expect(m.getTask('web.1.0').state).toBe('lost');
    expect(m.getTask('web.1.0').reason).toBe('agent_reregistered');
  });

  it('a second connection registering the same agent id supersedes the first', async () => {
    const m = await fx.open({ heartbeatTimeoutMs: 5_000, heartbeatIntervalMs: 50 });
    const first = fx.agent({ id: 'a1' });
    await first.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => running(m, 'web').length === 1, 'running');
    // Same id, a different process that runs nothing (the old one's tasks died with it).
    const second = fx.agent({ id: 'a1' });
    await second.connect(m);
    await waitFor(() => first.lastClose !== null, 'the first connection closed');
    expect(first.lastClose?.code).toBe(AgentCloseCode.SUPERSEDED);
    await waitFor(() => running(m, 'web')[0]?.id === 'web.0.1', 'the task replaced on the new connection');
    expect(second.launches).toEqual(['web.0.1']);
    expect(m.listAgents()).toHaveLength(1);
  });

  it('drains an agent: services move elsewhere (replacement first), no new placements there', async () => {
    const m = await fx.open();
    const events = recordEvents(m);
    const a = fx.agent({ id: 'a1' });
    await a.connect(m);
    await m.submitJob(service('web', 2));
    await waitFor(() => running(m, 'web').length === 2, 'two running on a1');
    const b = fx.agent({ id: 'a2' });
    await b.connect(m);
    const view = await m.drainAgent('a1');
    expect(view.state).toBe('draining');
    // Events follow durable state, so wait on them rather than on the (possibly earlier) in-memory state.
    await waitFor(() => events.filter((e) => e.type === 'task_state' && e.state === 'killed').length === 2, 'old tasks killed');
    expect(running(m, 'web').map((t) => [t.id, t.agentId])).toEqual([
      ['web.0.1', 'a2'],
      ['web.1.1', 'a2'],
    ]);
    // Each old task was killed only after its replacement was running.
    for (const i of [0, 1]) {
      const newRunning = events.findIndex((e) => e.taskId === `web.${i}.1` && e.state === 'running');
      const oldKilled = events.findIndex((e) => e.taskId === `web.${i}.0` && e.state === 'killed');
      expect(newRunning).toBeGreaterThanOrEqual(0);
      expect(oldKilled).toBeGreaterThan(newRunning);
    }
    await m.scaleJob('web', 4);
    await waitFor(() => running(m, 'web').length === 4, 'four running');
    expect(running(m, 'web').every((t) => t.agentId === 'a2')).toBe(true);
    expect(m.cluster().agents.draining).toBe(1);
    await expect(m.drainAgent('nope')).rejects.toMatchObject({ code: 'BRL_ERR_UNKNOWN_AGENT' });
  });

  it('answers a frame that does not decode with a ProtocolError and closes; the master keeps going', async () => {
    const m = await fx.open();
    const pair = connectionPair();
    const got: ReturnType<typeof decodeMasterMessage>[] = [];
    pair.agent.onMessage((b) => got.push(decodeMasterMessage(b)));
    m.attachAgent(pair.master);
    pair.agent.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
    await waitFor(() => pair.state.closed && got.length > 0, 'the error and the close');
    expect(pair.state.closeInfo?.code).toBe(AgentCloseCode.PROTOCOL_ERROR);
    expect(got[0]?.error?.code).toBe('BRL_ERR_PROTOCOL');

    // Status before Register: refused the same way.
    const p2 = connectionPair();
    const got2: ReturnType<typeof decodeMasterMessage>[] = [];
    p2.agent.onMessage((b) => got2.push(decodeMasterMessage(b)));
    m.attachAgent(p2.master);
    p2.agent.send(encodeAgentMessage({ status: { status: { taskId: 'x', state: taskStateToWire('running'), uuid: 'u1' } } }));
    await waitFor(() => p2.state.closed && got2.length > 0, 'the second connection closed');
    expect(got2[0]?.error?.message).toMatch(/register/);

    // Registering with resources the table refuses (a port span over its limit).
    const p3 = connectionPair();
    const got3: ReturnType<typeof decodeMasterMessage>[] = [];
    p3.agent.onMessage((b) => got3.push(decodeMasterMessage(b)));
    m.attachAgent(p3.master);
    p3.agent.send(encodeAgentMessage({ register: { agentId: 'wide', resources: { cpusMilli: 1000, memMib: 1024, ports: [{ begin: 1000, end: 60000 }] } } }));
    await waitFor(() => p3.state.closed && got3.length > 0, 'the third connection closed');
    expect(got3[0]?.error?.code).toBe('BRL_ERR_BAD_PORT_RANGE');
    expect(m.listAgents()).toEqual([]);

    // A well-behaved agent is unaffected.
    const a = fx.agent({ id: 'ok' });
    await a.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => running(m, 'web').length === 1, 'running');
  });

  it('acknowledges duplicate and stale updates, refuses illegal transitions with an error event', async () => {
    const m = await fx.open();
    const events = recordEvents(m);
    const a = fx.agent({ id: 'a1' });
    await a.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => running(m, 'web').length === 1, 'running');
    const history = m.getTask('web.0.0').history.length;
    a.report('web.0.0', 'running'); // duplicate
    a.report('web.0.0', 'pending'); // illegal: running -> pending (only the master has pending tasks)
    a.report('nobody.0.0', 'running'); // unknown task: killed there
    await waitFor(() => a.pendingAcks === 0, 'all acknowledged');
    expect(m.getTask('web.0.0').state).toBe('running');
    expect(m.getTask('web.0.0').history).toHaveLength(history);
    expect(events.filter((e) => e.type === 'error')).toEqual([
      expect.objectContaining({ taskId: 'web.0.0', data: expect.objectContaining({ code: 'BRL_ERR_INVALID_TRANSITION' }) }),
    ]);
    await waitFor(() => a.kills.includes('nobody.0.0'), 'the unknown task killed');
  });

  it('treats an older progress state resent after a reconnect (STARTING after RUNNING) as a stale repeat', async () => {
    const m = await fx.open({ heartbeatTimeoutMs: 5_000, heartbeatIntervalMs: 50 });
    const events = recordEvents(m);
    // The agent reports STARTING, but the ack never arrives before the connection drops.
    const a = fx.agent({ id: 'a1', onLaunch: (info, agent) => agent.report(info.taskId, 'starting') });
    await a.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => m.getTask('web.0.0').state === 'starting', 'starting');
    a.disconnect();
    // Meanwhile the task came up; it re-registers saying RUNNING (reconciled), then resends the
    // STARTING it never had an ack for (the SimAgent resends every unacknowledged update).
    a.report('web.0.0', 'starting'); // unacknowledged: resent after Registered, behind the Register's RUNNING
    a.tasks.get('web.0.0')!.state = 'running';
    await a.connect(m);
    await waitFor(() => a.pendingAcks === 0, 'every update acknowledged');
    const t = m.getTask('web.0.0');
    expect(t.state).toBe('running');
    expect(t.history.map((h) => h.state)).toEqual(['pending', 'staging', 'starting', 'running']);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
    expect(a.kills).toEqual([]);
    expect(a.launches).toEqual(['web.0.0']);
  });

  it('reports the advertised address, not the connection peer, as the agent address', async () => {
    const m = await fx.open();
    const a = fx.agent({ id: 'a1', advertiseIp: '192.0.2.7', peerAddress: '127.0.0.1:49152' });
    await a.connect(m);
    const view = m.listAgents()[0]!;
    expect(view.address).toBe('192.0.2.7');
    expect(view.peer).toBe('127.0.0.1:49152');
    // With nothing advertised, the peer's host stands in (never its ephemeral port).
    const b = fx.agent({ id: 'b1', advertiseIp: '', peerAddress: '127.0.0.5:40000' });
    await b.connect(m);
    const vb = m.listAgents().find((x) => x.id === 'b1')!;
    expect(vb.address).toBe('127.0.0.5');
    expect(vb.peer).toBe('127.0.0.5:40000');
  });

  it('keeps a task the agent re-registers as STAGING (launched, no status yet): neither lost nor launched twice', async () => {
    const m = await fx.open({ heartbeatTimeoutMs: 5_000, heartbeatIntervalMs: 50 });
    const events = recordEvents(m);
    const a = fx.agent({ id: 'a1', onLaunch: () => undefined }); // took the launch, has said nothing yet
    await a.connect(m);
    await m.submitJob(service('web', 1));
    await waitFor(() => a.launches.length === 1, 'the launch');
    a.disconnect();
    await a.connect(m); // Register.tasks: web.0.0 as STAGING
    await new Promise((r) => setTimeout(r, 100));
    expect(m.getTask('web.0.0').state).toBe('staging');
    expect(a.kills).toEqual([]);
    a.report('web.0.0', 'starting');
    a.report('web.0.0', 'running');
    await waitFor(() => running(m, 'web')[0]?.id === 'web.0.0', 'running');
    expect(a.launches).toEqual(['web.0.0']);
    expect(events.filter((e) => e.type === 'error')).toEqual([]);
  });
});
