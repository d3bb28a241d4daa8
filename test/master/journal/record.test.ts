import { describe, expect, it } from 'vitest';
import { HEADER_BYTES, RECORD_MAGIC, SNAPSHOT_MAGIC, decodeFrame, encodeFrame, encodeTextFrame } from '../../../src/master/journal/record.js';

describe('record framing', () => {
  it('round-trips payloads and sequence numbers up to 2^53 - 1', () => {
    for (const seq of [1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
      const frame = encodeFrame(RECORD_MAGIC, seq, Uint8Array.of(1, 2, 3));
      expect(frame.length).toBe(HEADER_BYTES + 3);
      const d = decodeFrame(frame, 0, RECORD_MAGIC);
      expect(d).toMatchObject({ ok: true, seq, next: frame.length });
      if (d.ok) expect([...d.payload]).toEqual([1, 2, 3]);
    }
  });

  it('encodes text frames as UTF-8', () => {
    const frame = encodeTextFrame(RECORD_MAGIC, 9, '{"k":"\u00e9\u{1f600}"}');
    const d = decodeFrame(frame, 0, RECORD_MAGIC);
    expect(d.ok && d.payload.toString('utf8')).toBe('{"k":"\u00e9\u{1f600}"}');
  });

  it('classifies damage', () => {
    const frame = encodeFrame(RECORD_MAGIC, 5, new Uint8Array(40).fill(7));
    expect(decodeFrame(frame.subarray(0, 10), 0, RECORD_MAGIC)).toEqual({ ok: false, damage: 'torn-header' });
    expect(decodeFrame(frame.subarray(0, 50), 0, RECORD_MAGIC)).toEqual({ ok: false, damage: 'torn-payload' });
    expect(decodeFrame(frame, 0, SNAPSHOT_MAGIC)).toEqual({ ok: false, damage: 'bad-magic' });
    expect(decodeFrame(Buffer.alloc(64), 0, RECORD_MAGIC)).toEqual({ ok: false, damage: 'bad-magic' });
    for (const at of [8, 12, 16, 30]) {
      const bad = Buffer.from(frame);
      bad[at] ^= 0x01;
      const d = decodeFrame(bad, 0, RECORD_MAGIC);
      expect(d.ok).toBe(false); // length flips may read as torn; everything else fails the checksum
    }
    const flipped = Buffer.from(frame);
    flipped[30] ^= 0x80;
    expect(decodeFrame(flipped, 0, RECORD_MAGIC)).toEqual({ ok: false, damage: 'bad-checksum' });
  });
});
