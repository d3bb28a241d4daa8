import { describe, expect, it } from 'vitest';
import { crc32c } from '../../../src/master/journal/crc32c.js';

/** Bit-at-a-time reference, to check the sliced tables against. */
function reference(data: Uint8Array): number {
  let c = ~0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  it('matches the published check values (RFC 3720 B.4)', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('agrees with a bitwise reference at every length and continues across splits', () => {
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 2654435761) >>> 24);
    for (let n = 0; n <= data.length; n += 7) {
      const part = data.subarray(0, n);
      expect(crc32c(part)).toBe(reference(part));
      const cut = n >> 1;
      expect(crc32c(part.subarray(cut), crc32c(part.subarray(0, cut)))).toBe(reference(part));
    }
  });
});
