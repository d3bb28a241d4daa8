/** GET /v1/events over real sockets on 127.0.0.1, against an in-process master with in-process sim agents. */
import { describe, expect, it } from 'vitest';
import type { Master } from '../../src/master/index.js';
import { SimAgent } from '../../src/master/testing/sim-agent.js';
import { EVENTS_JSON_SUBPROTOCOL, EVENTS_PROTOBUF_SUBPROTOCOL, type HelloMessage, type ResyncMessage } from '../../src/proto/events.js';
import { apiFixture, waitFor } from '../api/helpers.js';
import { caughtUp, range, refused, running, seqs, service, startWithStream, subscribe, wire } from './helpers.js';

const fx = apiFixture();

async function withAgents(master: Master, n = 2): Promise<SimAgent[]> {
  const agents: SimAgent[] = [];
  for (let i = 1; i <= n; i++) {
    const a = new SimAgent({ id: `sim-${i}` });
    await a.connect(master);
    fx.onCleanup(() => a.stop());
    agents.push(a);
  }
  return agents;
}

describe('GET /v1/events', () => {
  it('resumes across a reconnect with no gap and no duplicate', async () => {
    const { master, addr } = await fx.start();
    await withAgents(master);
    const a = await subscribe(addr, 'since=0');
    const hello = a.messages[0] as HelloMessage;
    expect(hello).toMatchObject({ type: 'hello', epoch: master.events.epoch, seq: 0, firstSeq: 1 });

    await master.submitJob(service('web', 4));
    await running(master, 'web', 4);
    await caughtUp(master, a.last, 'the first subscriber');
    a.close();
    await a.closed;
    const cut = a.last();

    // Changes while nobody listens, then resume after the last seq seen.
    await master.scaleJob('web', 7);
    await running(master, 'web', 7);
    const b = await subscribe(addr, `since=${cut}&epoch=${hello.epoch}`);
    expect(b.messages[0]).toMatchObject({ type: 'hello', seq: cut });
    await master.submitJob(service('api', 2));
    await running(master, 'api', 2);
    const last = await caughtUp(master, b.last, 'the resumed subscriber');

    const all = [...a.events, ...b.events];
    expect(seqs(all)).toEqual(range(1, last));
    // Later events (agents acknowledging, tasks settling) may still be arriving: compare the prefix.
    expect(all).toEqual(wire(master.events.since(0)!).slice(0, all.length));
    expect(all.some((e) => e.type === 'task_placed' && e.job === 'api')).toBe(true);
    b.close();
  });

  it('sends a resync with a snapshot when the seq has left the event log, then the live stream', async () => {
    // A small ring and a log that keeps only the newest few events (whole segments of ~2 events are dropped);
    // filler events push seq 1 out of both. The ring still holds everything the live part below produces, so a
    // reader slowed by a loaded machine is not sent a second resync.
    const { master, addr } = await fx.start({ eventCapacity: 64, eventLog: { segmentBytes: 256, retainEvents: 4 } });
    await withAgents(master, 1);
    await master.submitJob(service('web', 5));
    await running(master, 'web', 5);
    for (let i = 0; i < 100; i++) master.events.publish({ type: 'error', data: { code: 'BRL_ERR_INTERNAL', message: `filler ${i}` } });
    expect(master.events.firstSeq).toBeGreaterThan(2);

    const c = await subscribe(addr, 'since=1', EVENTS_JSON_SUBPROTOCOL);
    const r = c.messages[0] as ResyncMessage;
    expect(r).toMatchObject({ type: 'resync', epoch: master.events.epoch, requestedSeq: 1, seq: master.events.lastSeq });
    expect(r.reason).toContain('has left the event log');
    expect(r.snapshot.jobs.map((j) => j.name)).toEqual(['web']);
    expect(r.snapshot.tasks.filter((t) => t.state === 'running')).toHaveLength(5);
    expect(r.snapshot.agents.map((a) => a.id)).toEqual(['sim-1']);
    expect(r.snapshot.cluster.agents.up).toBe(1);

    await master.scaleJob('web', 6);
    await running(master, 'web', 6);
    const last = await caughtUp(master, c.last, 'the live stream after the resync');
    expect(seqs(c.events)).toEqual(range(r.seq + 1, last));

    // A seq from the future (another master's epoch) and a foreign epoch resync too.
    const ahead = await subscribe(addr, `since=${last + 100}`);
    expect(ahead.messages[0]).toMatchObject({ type: 'resync', seq: last, requestedSeq: last + 100 });
    const foreign = await subscribe(addr, `since=${last}&epoch=00000000-0000-0000-0000-000000000000`);
    expect(foreign.messages[0]).toMatchObject({ type: 'resync', seq: last });
    expect((foreign.messages[0] as ResyncMessage).reason).toContain('restarted');
    for (const x of [c, ahead, foreign]) x.close();
  });

  it('filters by job, agent and type', async () => {
    const { master, addr } = await fx.start();
    await withAgents(master, 2);
    const start = master.events.lastSeq;
    const byJob = await subscribe(addr, 'job=web');
    const byType = await subscribe(addr, 'type=task_placed,job_submitted', EVENTS_JSON_SUBPROTOCOL);
    const byAgent = await subscribe(addr, 'agent=sim-2');
    const both = await subscribe(addr, 'job=api&type=task_state');
    await master.submitJob(service('web', 4));
    await master.submitJob(service('api', 4));
    await running(master, 'web', 4);
    await running(master, 'api', 4);
    const all = wire(master.events.since(start)!);
    await waitFor(() => byJob.events.length === all.filter((e) => e.job === 'web').length, 'job-filtered events');
    await new Promise((r) => setTimeout(r, 50));
    const everything = wire(master.events.since(start)!);
    expect(byJob.events).toEqual(everything.filter((e) => e.job === 'web'));
    expect(byType.events).toEqual(everything.filter((e) => e.type === 'task_placed' || e.type === 'job_submitted'));
    expect(byAgent.events).toEqual(everything.filter((e) => e.agentId === 'sim-2'));
    expect(byAgent.events.length).toBeGreaterThan(0);
    expect(both.events).toEqual(everything.filter((e) => e.job === 'api' && e.type === 'task_state'));
    for (const x of [byJob, byType, byAgent, both]) x.close();
  });

  it('cuts off a reader that never reads (4008, resume seq) while a fast one keeps receiving everything', async () => {
    // Small bounds so a few MB of events (past the kernel's socket buffers) are enough.
    const { master, api, addr } = await startWithStream(fx, { eventCapacity: 100_000 }, { maxPendingEvents: 2_000, highWaterBytes: 64 * 1024 });
    const fast = await subscribe(addr, '');
    const slow = await subscribe(addr, '', EVENTS_JSON_SUBPROTOCOL);
    slow.socket().pause();
    const pad = 'x'.repeat(1_000);
    const rounds = 60;
    const perRound = 500;
    // Synthetic load through the master's own bus (the stream's only input): 30,000 events of ~1 KiB.
    for (let r = 0; r < rounds && api.events.subscribers === 2; r++) {
      for (let i = 0; i < perRound; i++) master.events.publish({ type: 'error', data: { code: 'BRL_ERR_INTERNAL', pad, i } });
      await new Promise((res) => setTimeout(res, 5));
    }
    await waitFor(() => api.events.subscribers === 1, 'the slow reader to be cut off');
    // The fast reader was never held up: it has (or gets) every event, in order.
    for (let r = 0; r < 5; r++) {
      for (let i = 0; i < perRound; i++) master.events.publish({ type: 'error', data: { code: 'BRL_ERR_INTERNAL', pad, i } });
      await new Promise((res) => setTimeout(res, 5));
    }
    const last = master.events.lastSeq;
    await waitFor(() => fast.last() === last, 'the fast reader to receive everything', 30_000);
    expect(seqs(fast.events)).toEqual(range(1, last));

    // The slow reader reads again: it gets everything up to N, the close message, then the close frame.
    slow.socket().resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    const n = Number(/^slow consumer: resume from seq (\d+)$/.exec(closed.reason)?.[1]);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(last);
    expect(seqs(slow.events)).toEqual(range(1, n));
    expect(slow.messages.at(-1)).toEqual({ type: 'close', code: 4008, reason: closed.reason, lastSeq: n });

    // ...and resumes from N with no gap.
    const again = await subscribe(addr, `since=${n}`);
    expect(again.messages[0]).toMatchObject({ type: 'hello', seq: n });
    await waitFor(() => again.last() === last, 'the resumed reader to catch up', 30_000);
    expect(seqs(again.events)).toEqual(range(n + 1, last));
    fast.close();
    again.close();
  });

  it('carries the same events in protobuf and JSON', async () => {
    const { master, addr } = await fx.start();
    const pb = await subscribe(addr, 'since=0', EVENTS_PROTOBUF_SUBPROTOCOL);
    const js = await subscribe(addr, 'since=0', EVENTS_JSON_SUBPROTOCOL);
    const agents = await withAgents(master, 2);
    await master.submitJob(service('web', 3));
    await running(master, 'web', 3);
    await master.drainAgent('sim-1');
    agents[1]!.fail(master.listTasks('web').find((t) => t.agentId === 'sim-2' && t.state === 'running')!.id);
    await master.killJob('web');
    const last = await caughtUp(master, pb.last, 'the protobuf reader');
    await waitFor(() => js.last() === last, 'the JSON reader');
    expect(pb.events).toEqual(js.events);
    expect(pb.events).toEqual(wire(master.events.since(0)!).slice(0, pb.events.length));
    const types = new Set(pb.events.map((e) => e.type));
    for (const t of ['agent_registered', 'job_submitted', 'task_placed', 'task_state', 'agent_draining', 'job_killed']) expect(types).toContain(t);
    expect(pb.ws.protocol).toBe(EVENTS_PROTOBUF_SUBPROTOCOL);
    expect(js.ws.protocol).toBe(EVENTS_JSON_SUBPROTOCOL);
    pb.close();
    js.close();
  });

  it('refuses an unknown or missing subprotocol and a bad query before the handshake', async () => {
    const { addr, api } = await fx.start();
    expect(await refused(addr, '', 'borealis.v2.xml')).toMatchObject({ status: 400, body: { code: 'BRL_ERR_PROTOCOL' } });
    expect(await refused(addr, '')).toMatchObject({ status: 400, body: { code: 'BRL_ERR_PROTOCOL' } });
    for (const q of ['?since=-1', '?since=abc', '?since=1.5', '?type=bogus', '?type=task_state,', '?jobs=web', '?job=Bad%20Name', '?since=1&since=2', '?epoch=%3Cscript%3E']) {
      const r = await refused(addr, q, EVENTS_PROTOBUF_SUBPROTOCOL);
      expect(r, q).toMatchObject({ status: 400, body: { code: 'BRL_ERR_INVALID_ARGUMENT' } });
    }
    expect(api.events.subscribers).toBe(0);
    // A client offering both gets protobuf; the server is still fine.
    const c = await subscribe(addr, '', [EVENTS_JSON_SUBPROTOCOL, EVENTS_PROTOBUF_SUBPROTOCOL]);
    expect(c.ws.protocol).toBe(EVENTS_PROTOBUF_SUBPROTOCOL);
    c.close();
  });

  it('closes a stream on client data frames (1003), oversized (1009) or broken (1002) frames, and keeps serving others', async () => {
    const { master, api, addr } = await fx.start();
    const watcher = await subscribe(addr, '');
    const text = await subscribe(addr, '', EVENTS_JSON_SUBPROTOCOL);
    text.ws.send('{"filter":"job=web"}');
    expect(await text.closed).toMatchObject({ code: 1003, reason: expect.stringContaining('read-only') });
    expect(text.messages.at(-1)).toMatchObject({ type: 'close', code: 1003, lastSeq: 0 });

    const binary = await subscribe(addr, '');
    binary.ws.send(Buffer.from([0x0a, 0xff, 0xff]));
    expect((await binary.closed).code).toBe(1003);

    const big = await subscribe(addr, '');
    big.ws.send(Buffer.alloc(64 * 1024));
    expect((await big.closed).code).toBe(1009);

    // A complete frame with a reserved opcode: not WebSocket at all. ws answers with a 1002 close frame;
    // uWebSockets.js drops the connection without one (the client sees 1006). Either way the stream ends.
    const broken = await subscribe(addr, '');
    broken.socket().write(Buffer.from([0x83, 0x82, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02]));
    expect((await broken.closed).code).toBe(api.server.transport === 'uws' ? 1006 : 1002);

    await waitFor(() => api.events.subscribers === 1, 'only the watcher left');
    master.events.publish({ type: 'error', data: { code: 'BRL_ERR_INTERNAL', message: 'still here' } });
    await waitFor(() => watcher.events.length === 1, 'the watcher to keep receiving');
    expect(watcher.events[0]).toMatchObject({ type: 'error', data: { message: 'still here' } });
    watcher.close();
  });

  it('batches a burst into frames of at most maxBatchEvents, in order', async () => {
    const { master, addr } = await startWithStream(fx, {}, { maxBatchEvents: 100 });
    const c = await subscribe(addr, '');
    for (let i = 0; i < 1_050; i++) master.events.publish({ type: 'error', data: { i } });
    await waitFor(() => c.last() === 1_050, 'the burst');
    const batches = c.messages.filter((m) => m.type === 'events');
    expect(batches.length).toBeGreaterThanOrEqual(11);
    expect(Math.max(...batches.map((b) => b.events.length))).toBeLessThanOrEqual(100);
    expect(seqs(c.events)).toEqual(range(1, 1_050));
    c.close();
  });

  it('closes subscribers with 1001 and their resume seq when the server stops', async () => {
    const { master, api, addr } = await fx.start();
    const c = await subscribe(addr, '');
    master.events.publish({ type: 'error', data: {} });
    await waitFor(() => c.last() === 1, 'one event');
    await api.close();
    expect(await c.closed).toEqual({ code: 1001, reason: 'server closing: resume from seq 1' });
  });
});
