import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/api/errors.js';
import { DEFAULT_PORT_RANGES, countPorts, formatPortRanges, parsePortRanges } from '../../src/resources/ports.js';
import { codeOf } from './helpers.js';

const BAD = ErrorCodes.BAD_PORT_RANGE;

describe('parsePortRanges', () => {
  it('parses a range and a single port', () => {
    expect(parsePortRanges('31000-32000')).toEqual([{ begin: 31000, end: 32000 }]);
    expect(parsePortRanges('8080')).toEqual([{ begin: 8080, end: 8080 }]);
    expect(parsePortRanges(' 1 - 2 ')).toEqual([{ begin: 1, end: 2 }]);
    expect(parsePortRanges('65535')).toEqual([{ begin: 65535, end: 65535 }]);
  });

  it('sorts several ranges by their first port', () => {
    expect(parsePortRanges('31000-32000,8000-8010,9000')).toEqual([
      { begin: 8000, end: 8010 },
      { begin: 9000, end: 9000 },
      { begin: 31000, end: 32000 },
    ]);
  });

  it('accepts the Mesos bracketed form', () => {
    expect(parsePortRanges('[31000-31005,31010-31020]')).toEqual([
      { begin: 31000, end: 31005 },
      { begin: 31010, end: 31020 },
    ]);
  });

  it('accepts adjacent ranges but refuses overlapping ones', () => {
    expect(parsePortRanges('100-200,201-300')).toHaveLength(2);
    for (const text of ['100-200,150-250', '100-200,200-300', '150-250,100-200', '8080,8080', '100-300,150']) {
      expect(codeOf(() => parsePortRanges(text)), text).toBe(BAD);
    }
  });

  it('refuses reversed, out-of-range and garbage ranges', () => {
    for (const text of [
      '200-100',
      '0',
      '0-10',
      '65536',
      '65000-65536',
      '99999999999999999999',
      '',
      '   ',
      'abc',
      '80-',
      '-80',
      '1-2-3',
      '80,',
      ',80',
      '80;90',
      '80.5',
      '-5',
      'http',
    ]) {
      expect(codeOf(() => parsePortRanges(text)), JSON.stringify(text)).toBe(BAD);
    }
  });

  it('validates ranges given as objects the same way', () => {
    expect(parsePortRanges([{ begin: 9000, end: 9001 }, { begin: 80, end: 80 }])).toEqual([
      { begin: 80, end: 80 },
      { begin: 9000, end: 9001 },
    ]);
    for (const ranges of [
      [{ begin: 10, end: 5 }],
      [{ begin: 0, end: 5 }],
      [{ begin: 1, end: 70000 }],
      [{ begin: 1.5, end: 3 }],
      [{ begin: Number.NaN, end: 3 }],
      [{ begin: 1, end: 10 }, { begin: 5, end: 20 }],
    ]) {
      expect(codeOf(() => parsePortRanges(ranges)), JSON.stringify(ranges)).toBe(BAD);
    }
  });

  it('does not hand back the caller\'s objects', () => {
    const input = [{ begin: 1, end: 2 }];
    const out = parsePortRanges(input);
    out[0]!.end = 99;
    expect(input[0]!.end).toBe(2);
  });
});

describe('countPorts and formatPortRanges', () => {
  it('counts inclusive ranges', () => {
    expect(countPorts([])).toBe(0);
    expect(countPorts([{ begin: 8080, end: 8080 }])).toBe(1);
    expect(countPorts(DEFAULT_PORT_RANGES)).toBe(1001);
    expect(countPorts(parsePortRanges('8000-8009,9000,31000-31099'))).toBe(111);
  });

  it('formats back to the text form', () => {
    const text = '8000-8009,9000,31000-31099';
    expect(formatPortRanges(parsePortRanges(text))).toBe(text);
    expect(formatPortRanges(parsePortRanges('9000,8000-8009'))).toBe('8000-8009,9000');
  });
});
