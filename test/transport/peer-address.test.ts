import { describe, expect, it } from 'vitest';
import { PeerAddressText, formatIp } from '../../src/transport/peer-address.js';

function v6(groups: number[]): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(16);
  groups.forEach((g, i) => {
    b[2 * i] = g >> 8;
    b[2 * i + 1] = g & 0xff;
  });
  return b;
}

/** The WHATWG URL parser's IPv6 serialisation compresses as RFC 5952 does (first longest run of >= 2 zero groups). */
function viaUrl(b: Uint8Array): string {
  const full = Array.from({ length: 8 }, (_, g) => ((b[2 * g]! << 8) | b[2 * g + 1]!).toString(16)).join(':');
  return new URL(`http://[${full}]/`).hostname.slice(1, -1);
}

describe('formatIp', () => {
  it('writes IPv4 dotted and IPv4-mapped IPv6 as node does (::ffff:a.b.c.d)', () => {
    expect(formatIp(Uint8Array.of(127, 0, 0, 1))).toBe('127.0.0.1');
    expect(formatIp(Uint8Array.of(10, 200, 3, 255))).toBe('10.200.3.255');
    expect(formatIp(v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001]))).toBe('::ffff:127.0.0.1');
  });

  it('compresses IPv6 as RFC 5952 says', () => {
    expect(formatIp(v6([0, 0, 0, 0, 0, 0, 0, 1]))).toBe('::1');
    expect(formatIp(v6([0, 0, 0, 0, 0, 0, 0, 0]))).toBe('::');
    expect(formatIp(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe('2001:db8::1:0:0:1');
    expect(formatIp(v6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIp(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]))).toBe('2001:db8::');
    expect(formatIp(v6([0xfe80, 0, 0, 0, 0xabcd, 0xef, 0, 0]))).toBe('fe80::abcd:ef:0:0');
  });

  it('agrees with the URL parser on random addresses rich in zero groups', () => {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let n = 0; n < 5000; n++) {
      const groups = Array.from({ length: 8 }, () => (rnd() < 0.5 ? 0 : Math.floor(rnd() * 0x10000)));
      const b = v6(groups);
      if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) continue;
      expect(formatIp(b)).toBe(viaUrl(b));
    }
  });

  it('gives an empty string for a length that is not an address', () => {
    expect(formatIp(new Uint8Array(0))).toBe('');
    expect(formatIp(new Uint8Array(5))).toBe('');
  });
});

describe('PeerAddressText', () => {
  it('returns the remembered text only for the same bytes', () => {
    const t = new PeerAddressText();
    const a = Uint8Array.of(127, 0, 0, 1).buffer;
    expect(t.text(a)).toBe('127.0.0.1');
    expect(t.text(Uint8Array.of(127, 0, 0, 1).buffer)).toBe('127.0.0.1');
    expect(t.text(Uint8Array.of(127, 0, 0, 2).buffer)).toBe('127.0.0.2');
    expect(t.text(v6([0, 0, 0, 0, 0, 0, 0, 1]).buffer)).toBe('::1');
    expect(t.text(new ArrayBuffer(0))).toBe('');
    expect(t.text(Uint8Array.of(127, 0, 0, 2).buffer)).toBe('127.0.0.2');
  });
});
