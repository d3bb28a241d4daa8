/** The stream over the durable event log: resume across a master restart, replay past the ring, damage on disk. */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Master } from '../../src/master/index.js';
import { SimAgent } from '../../src/master/testing/sim-agent.js';
import type { ClusterEvent } from '../../src/master/types.js';
import { EVENTS_JSON_SUBPROTOCOL, type HelloMessage, type ResyncMessage } from '../../src/proto/events.js';
import { apiFixture, waitFor } from '../api/helpers.js';
import { caughtUp, range, running, seqs, service, subscribe, wire } from './helpers.js';

const fx = apiFixture();

async function agent(master: Master, id: string): Promise<SimAgent> {
  const a = new SimAgent({ id });
  await a.connect(master);
  fx.onCleanup(() => a.stop());
  return a;
}

function synthetic(master: Master, n: number): void {
  for (let i = 0; i < n; i++) {
    master.events.publish({ type: 'task_placed', job: i % 3 === 0 ? 'web' : 'api', taskId: `t${i}`, agentId: `a${i % 4}`, state: 'staging', data: { i } });
  }
}

describe('the event stream over the durable log', () => {
  it('resumes from a seq before a master restart on the same data dir: same epoch, no gap, no duplicate', async () => {
    const dataDir = await fx.tempDir();
    const first = await fx.start({ dataDir });
    await agent(first.master, 'sim-1');
    const a = await subscribe(first.addr, 'since=0');
    const epoch = (a.messages[0] as HelloMessage).epoch;
    await first.master.submitJob(service('web', 4));
    await running(first.master, 'web', 4);
    const before = await caughtUp(first.master, a.last, 'the first subscriber');
    a.close();
    await fx.stop(first.master, first.api);

    // The next master: a new ring, but the log goes on in the same epoch after the last seq.
    const second = await fx.start({ dataDir });
    expect(second.master.events.epoch).toBe(epoch);
    expect(second.master.events.ringFirstSeq).toBe(before + 1);
    await agent(second.master, 'sim-1');
    await second.master.submitJob(service('api', 2));
    await running(second.master, 'api', 2);

    const cut = Math.floor(before / 2);
    const b = await subscribe(second.addr, `since=${cut}&epoch=${epoch}`);
    expect(b.messages[0]).toEqual({ type: 'hello', epoch, seq: cut, firstSeq: 1 });
    const last = await caughtUp(second.master, b.last, 'the resumed subscriber');
    expect(last).toBeGreaterThan(before);
    expect(seqs(b.events)).toEqual(range(cut + 1, last));
    // The part both saw is the same events; what follows is the new master's.
    expect(b.events.slice(0, before - cut)).toEqual(a.events.slice(cut));
    expect(b.events.slice(before - cut)).toEqual(wire(second.master.events.since(before)!).slice(0, last - before));
    expect(b.events.some((e) => e.type === 'job_submitted' && e.job === 'api')).toBe(true);
    b.close();
  });

  it('replays past the ring from disk, to raw protobuf, filtered and JSON readers alike', async () => {
    const { master, addr } = await fx.start({ eventCapacity: 64, eventLog: { segmentBytes: 16 * 1024 } });
    synthetic(master, 5_000);
    master.events.flush();
    expect(master.events.ringFirstSeq).toBe(5_000 - 64 + 1);

    const pb = await subscribe(addr, 'since=10');
    const js = await subscribe(addr, 'since=10', EVENTS_JSON_SUBPROTOCOL);
    const web = await subscribe(addr, 'since=0&job=web');
    synthetic(master, 100); // live events go on behind the replay
    await waitFor(() => pb.last() === 5_100 && js.last() === 5_100, 'the unfiltered readers');
    // Every third synthetic event is web's: 1,667 of the first 5,000 and 34 of the next 100.
    await waitFor(() => web.events.length === 1_667 + 34, 'the filtered reader');

    expect(seqs(pb.events)).toEqual(range(11, 5_100));
    expect(js.events).toEqual(pb.events);
    const all: ClusterEvent[] = [];
    for (let seq = 0; seq < 5_100; ) {
      const chunk = await master.events.read(seq, 1_000);
      if (chunk === 'gone') throw new Error('gone');
      all.push(...chunk);
      seq = all.at(-1)!.seq;
    }
    expect(pb.events).toEqual(wire(all.slice(10)));
    expect(web.events).toEqual(wire(all.filter((e) => e.job === 'web')));
    for (const c of [pb, js, web]) c.close();
  });

  it('answers a damaged segment with a clear close (1011), then a resync, and keeps serving', async () => {
    const dataDir = await fx.tempDir();
    const first = await fx.start({ dataDir, eventCapacity: 16, eventLog: { segmentBytes: 2048 } });
    for (let r = 0; r < 10; r++) {
      synthetic(first.master, 40);
      first.master.events.flush();
    }
    await fx.stop(first.master, first.api);
    const dir = join(dataDir, 'events');
    const names = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
    expect(names.length).toBeGreaterThan(3);
    const victim = join(dir, names[1]!);
    const buf = await readFile(victim);
    buf[buf.length - 10] ^= 0x5a;
    await writeFile(victim, buf);

    const { master, addr } = await fx.start({ dataDir, eventCapacity: 16, eventLog: { segmentBytes: 2048 } });
    const c = await subscribe(addr, 'since=0');
    expect(c.messages[0]).toMatchObject({ type: 'hello', seq: 0 });
    const closed = await c.closed;
    expect(closed.code).toBe(1011);
    expect(c.messages.at(-1)).toMatchObject({ type: 'close', code: 1011, reason: expect.stringMatching(new RegExp(`^event log corrupt: ${names[1]} at offset \\d+: bad-checksum; resume from seq \\d+$`)) });
    // Everything before the damage came through, in order.
    expect(seqs(c.events)).toEqual(range(1, c.events.length));

    // Resuming there: those seqs are no longer served, so a resync, then the live stream.
    const again = await subscribe(addr, `since=${c.last()}&epoch=${master.events.epoch}`);
    expect(again.messages[0]).toMatchObject({ type: 'resync', requestedSeq: c.last() });
    expect((again.messages[0] as ResyncMessage).reason).toContain('has left the event log');
    synthetic(master, 3);
    await waitFor(() => again.events.length === 3, 'live events after the resync');
    // Seqs after the damaged segment are still served.
    const later = await subscribe(addr, `since=${master.events.firstSeq - 1}`);
    await waitFor(() => later.last() === master.events.lastSeq, 'a reader after the damage');
    expect(seqs(later.events)).toEqual(range(master.events.firstSeq, master.events.lastSeq));
    again.close();
    later.close();
  });
});
