/** `--scenario events`: its frame scanners against the real decoders, and a small run end to end. */
import { describe, expect, it } from 'vitest';
import { eventsRunOk, runEvents, scanJson, scanProto } from '../../bench/scenarios/events.js';
import { batchFrameProto, encodeEvent } from '../../src/events/codec.js';
import type { ClusterEvent } from '../../src/master/types.js';
import { decodeFrame, encodeBatchJson, encodeControlJson, encodeControlProto, encodeEventJson } from '../../src/proto/events.js';

function events(n: number): ClusterEvent[] {
  const out: ClusterEvent[] = [];
  for (let i = 0; i < n; i++) {
    // The publisher's shape: pubUs first in data; a long host makes some data_json lengths two-byte varints.
    const e = { type: 'task_placed', job: `svc-${i % 3}`, taskId: `svc.${i}.0`, agentId: 'agent-0001', state: 'staging', data: { pubUs: 1_000_000_000 + i * 7, from: 'pending', host: 'h'.repeat(i % 2 ? 150 : 5), ports: [31_000 + i] } } as Partial<ClusterEvent> as ClusterEvent;
    e.seq = 2 ** 33 + i;
    e.at = 1_700_000_000_000 + i;
    out.push(e);
  }
  return out;
}

describe('the events benchmark', () => {
  it('reads every seq and publish time from frames as the real decoders do', () => {
    const evs = events(300);
    const want = evs.map((e) => [e.seq, e.data!.pubUs]);
    const pb: number[][] = [];
    const pbFrame = batchFrameProto(evs.map(encodeEvent));
    expect(scanProto(pbFrame, (seq, pubUs) => pb.push([seq, pubUs]))).toBe('events');
    const json: number[][] = [];
    const jsonFrame = Buffer.from(encodeBatchJson(evs.map(encodeEventJson)));
    expect(scanJson(jsonFrame, (seq, pubUs) => json.push([seq, pubUs]))).toBe('events');
    expect(pb).toEqual(want);
    expect(json).toEqual(want);
    expect(decodeFrame(pbFrame)).toEqual({ type: 'events', events: evs });

    const hello = { type: 'hello', epoch: 'e', seq: 5, firstSeq: 1 } as const;
    expect(scanProto(Buffer.from(encodeControlProto(hello)), () => undefined)).toBe('control');
    expect(scanJson(Buffer.from(encodeControlJson(hello)), () => undefined)).toBe('control');
  });

  it('delivers every event to every subscriber exactly once, in order, and says so', async () => {
    for (const encoding of ['protobuf', 'json'] as const) {
      const r = await runEvents({ subscribers: 3, events: 5_000, transport: 'node', encoding, rate: 100_000, subscriberThreads: 2 });
      expect(r).toMatchObject({ scenario: 'events', transport: 'node', encoding, subscribers: 3, events: 5_000, lost: 0, duplicates: 0, outOfOrder: 0, timedOut: false });
      expect(eventsRunOk(r)).toBe(true);
      expect(r.eventsPerSecPerSubscriber).toBeGreaterThan(0);
      expect(r.latencyMs.max).toBeGreaterThanOrEqual(r.latencyMs.p50);
      expect(r.bytesPerEvent).toBeGreaterThan(encoding === 'json' ? 150 : 80);
    }
  });
});
