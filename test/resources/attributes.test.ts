import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/api/errors.js';
import { ABSENT, AttributeInterner, parseAttributes } from '../../src/resources/attributes.js';
import { codeOf } from './helpers.js';

const BAD = ErrorCodes.BAD_ATTRIBUTE;

describe('parseAttributes', () => {
  it('parses name=value pairs', () => {
    expect(parseAttributes('zone=a,rack=r1')).toEqual({ zone: 'a', rack: 'r1' });
    expect(parseAttributes(' zone = eu-3 , gpu_model=a100 ')).toEqual({ zone: 'eu-3', gpu_model: 'a100' });
    expect(parseAttributes('kubernetes.io/arch=amd64')).toEqual({ 'kubernetes.io/arch': 'amd64' });
  });

  it('keeps everything after the first "=" as the value', () => {
    expect(parseAttributes('k=a=b')).toEqual({ k: 'a=b' });
  });

  it('returns an empty record for empty text and skips empty parts', () => {
    expect(parseAttributes('')).toEqual({});
    expect(parseAttributes('zone=a,,rack=r1,')).toEqual({ zone: 'a', rack: 'r1' });
  });

  it('refuses bad names', () => {
    for (const text of ['1zone=a', 'zo ne=a', 'zone!=a', '-x=1', 'a:b=c', 'é=1']) {
      expect(codeOf(() => parseAttributes(text)), text).toBe(BAD);
    }
  });

  it('refuses parts that are not name=value and empty values', () => {
    for (const text of ['zone', '=a', 'zone=', 'zone= ', 'zone=a,rack', 'zone=a,rack=']) {
      expect(codeOf(() => parseAttributes(text)), text).toBe(BAD);
    }
  });

  it('refuses a name given twice', () => {
    expect(codeOf(() => parseAttributes('zone=a,zone=b'))).toBe(BAD);
    expect(codeOf(() => parseAttributes('zone=a, zone =a'))).toBe(BAD);
  });

  // `key in out` looks up the prototype chain, so names that Object.prototype carries read as duplicates.
  it('accepts names that happen to be Object.prototype members (constructor, toString)', () => {
    expect(parseAttributes('constructor=x')).toEqual({ constructor: 'x' });
    expect(parseAttributes('toString=y')).toEqual({ toString: 'y' });
  });
});

describe('AttributeInterner', () => {
  it('gives keys consecutive slots, stable on re-intern', () => {
    const ix = new AttributeInterner(4);
    expect(ix.slotOf('zone')).toBe(-1);
    expect(ix.internKey('zone')).toBe(0);
    expect(ix.internKey('rack')).toBe(1);
    expect(ix.internKey('zone')).toBe(0);
    expect(ix.slotOf('rack')).toBe(1);
    expect(ix.keyName(1)).toBe('rack');
    expect(ix.keys()).toEqual(['zone', 'rack']);
  });

  it('refuses invalid key names', () => {
    const ix = new AttributeInterner(4);
    expect(codeOf(() => ix.internKey('bad key'))).toBe(BAD);
    expect(codeOf(() => ix.internKey(''))).toBe(BAD);
    expect(ix.keys()).toEqual([]);
  });

  it('enforces the key limit, still resolving known keys', () => {
    const ix = new AttributeInterner(2);
    ix.internKey('a');
    ix.internKey('b');
    expect(codeOf(() => ix.internKey('c'))).toBe(BAD);
    expect(ix.slotOf('c')).toBe(-1);
    expect(ix.internKey('a')).toBe(0);
    expect(ix.keys()).toHaveLength(2);
  });

  it('interns values to ids starting at 1 (0 is ABSENT), namespaced per key', () => {
    const ix = new AttributeInterner(4);
    const zone = ix.internKey('zone');
    const rack = ix.internKey('rack');
    expect(ix.valueIdOf(zone, 'a')).toBe(ABSENT);
    const za = ix.internValue(zone, 'a');
    const ra = ix.internValue(rack, 'a');
    expect(za).toBeGreaterThan(ABSENT);
    expect(ra).toBeGreaterThan(ABSENT);
    expect(ra).not.toBe(za);
    expect(ix.internValue(zone, 'a')).toBe(za);
    expect(ix.valueIdOf(zone, 'a')).toBe(za);
    expect(ix.valueIdOf(rack, 'a')).toBe(ra);
    expect(ix.valueIdOf(rack, 'b')).toBe(ABSENT);
    expect(ix.valueName(za)).toBe('a');
    expect(ix.valueName(ABSENT)).toBe('');
    expect(ix.valueCount).toBe(3);
  });

  it('lists the values of one key only', () => {
    const ix = new AttributeInterner(4);
    const zone = ix.internKey('zone');
    const rack = ix.internKey('rack');
    const a = ix.internValue(zone, 'a');
    ix.internValue(rack, 'r1');
    const b = ix.internValue(zone, 'b');
    expect([...ix.valuesOf(zone)]).toEqual([
      [a, 'a'],
      [b, 'b'],
    ]);
    expect([...ix.valuesOf(3)]).toEqual([]);
  });

  it('bumps the generation only when a new value appears', () => {
    const ix = new AttributeInterner(4);
    const g0 = ix.generation;
    const zone = ix.internKey('zone');
    expect(ix.generation).toBe(g0);
    ix.internValue(zone, 'a');
    const g1 = ix.generation;
    expect(g1).toBeGreaterThan(g0);
    ix.internValue(zone, 'a');
    ix.valueIdOf(zone, 'zzz');
    ix.internKey('zone');
    ix.internKey('rack');
    expect(ix.generation).toBe(g1);
    ix.internValue(zone, 'b');
    expect(ix.generation).toBeGreaterThan(g1);
    const g2 = ix.generation;
    ix.internValue(ix.slotOf('rack'), 'a'); // same text under another key is a new value
    expect(ix.generation).toBeGreaterThan(g2);
  });
});
