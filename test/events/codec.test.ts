import { describe, expect, it } from 'vitest';
import { batchFrameProto, decodeLoggedEvent, encodeEvent, eventJsonFromEncoded } from '../../src/events/codec.js';
import type { ClusterEvent } from '../../src/master/types.js';
import { EventType, decodeFrameProto, encodeBatchProto, encodeEventProto } from '../../src/proto/events.js';

const events: ClusterEvent[] = [
  { seq: 1, at: 1_700_000_000_123, type: 'job_submitted', job: 'web', data: { type: 'service', instances: 3 } },
  { seq: 2 ** 40 + 7, at: 0, type: 'task_state', job: 'web', taskId: 'web.0.0', agentId: 'a-1', state: 'running', data: { from: 'starting' } },
  { seq: 3, at: 5, type: 'agent_lost', agentId: 'ä-ñ-😀' },
  { seq: Number.MAX_SAFE_INTEGER, at: 1, type: 'error' },
  // A data_json past 127 bytes (two-byte length) and multi-byte text in it.
  { seq: 4, at: 9, type: 'task_placed', job: 'j', taskId: 'j.1.0', agentId: 'a', state: 'staging', data: { pad: 'é'.repeat(300), ports: [31000] } },
  { seq: 5, at: 9, type: 'balancer_stats', data: { big: 'x'.repeat(20_000) } },
];

describe('event codec', () => {
  it('encodes exactly what protobufjs decodes back to the same event, and round-trips through decodeLoggedEvent', () => {
    for (const e of events) {
      const mine = encodeEvent(e);
      expect(EventType.toObject(EventType.decode(mine))).toEqual(EventType.toObject(EventType.decode(encodeEventProto(e))));
      expect(Buffer.from(mine).equals(Buffer.from(encodeEventProto(e)))).toBe(true);
      expect(decodeLoggedEvent(mine)).toEqual(e);
      // The same JSON text as the event published (the bus orders fields type ... data, seq, at).
      const { seq, at, ...rest } = e;
      expect(JSON.stringify(decodeLoggedEvent(mine))).toBe(JSON.stringify({ ...rest, seq, at }));
      expect(eventJsonFromEncoded(mine)).toBe(JSON.stringify({ ...rest, seq, at }));
    }
  });

  it('builds the same batch frame as encodeBatchProto', () => {
    const parts = events.map(encodeEvent);
    const frame = batchFrameProto(parts);
    expect(frame.equals(Buffer.from(encodeBatchProto(parts)))).toBe(true);
    expect(decodeFrameProto(frame)).toEqual({ type: 'events', events });
    expect(decodeFrameProto(batchFrameProto([]))).toEqual({ type: 'events', events: [] });
  });

  it('refuses a record that is not an Event with a clear error', () => {
    expect(() => decodeLoggedEvent(new Uint8Array([0x0a, 0xff]))).toThrowError(expect.objectContaining({ code: 'BRL_ERR_INTERNAL' }));
    for (const bad of [[0x0a, 0xff], [0x08, 0x80], [0x1d, 1, 2, 3, 4]]) {
      expect(() => eventJsonFromEncoded(new Uint8Array(bad))).toThrowError(expect.objectContaining({ code: 'BRL_ERR_INTERNAL' }));
    }
  });
});
