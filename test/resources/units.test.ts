import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/api/errors.js';
import {
  MAX_QUANTITY,
  formatCpus,
  formatMebibytes,
  parseCount,
  parseCpus,
  parseMebibytes,
} from '../../src/resources/units.js';
import { codeOf } from './helpers.js';

const BAD = ErrorCodes.BAD_QUANTITY;

describe('parseCpus', () => {
  it('turns cores into millicores', () => {
    expect(parseCpus('1.5')).toBe(1500);
    expect(parseCpus(1.5)).toBe(1500);
    expect(parseCpus('2')).toBe(2000);
    expect(parseCpus(4)).toBe(4000);
    expect(parseCpus('0.25')).toBe(250);
    expect(parseCpus('.5')).toBe(500);
    expect(parseCpus(' 3 ')).toBe(3000);
    expect(parseCpus('1e1')).toBe(10000);
  });

  it('reads the "m" suffix as millicores', () => {
    expect(parseCpus('500m')).toBe(500);
    expect(parseCpus('1m')).toBe(1);
    expect(parseCpus('2500m')).toBe(2500);
    expect(parseCpus('0m')).toBe(0);
  });

  it('accepts zero', () => {
    expect(parseCpus(0)).toBe(0);
    expect(parseCpus('0')).toBe(0);
  });

  it('refuses negative, NaN, infinite, unit-less garbage and unknown units', () => {
    for (const raw of [-1, '-1', '-500m', Number.NaN, 'NaN', Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 'Infinity', '1e400']) {
      expect(codeOf(() => parseCpus(raw)), String(raw)).toBe(BAD);
    }
    for (const raw of ['', '   ', 'abc', '1.5.5', '1,5', '5Zi', '2Gi', '1 cores', 'm', '0x10']) {
      expect(codeOf(() => parseCpus(raw)), JSON.stringify(raw)).toBe(BAD);
    }
  });

  it('refuses values that are neither numbers nor strings', () => {
    for (const raw of [{}, { cpus: 1 }, [], [1], null, undefined, true, 1n]) {
      expect(codeOf(() => parseCpus(raw)), String(raw)).toBe(BAD);
    }
  });

  it('refuses a quantity that would overflow an Int32 column', () => {
    expect(codeOf(() => parseCpus(MAX_QUANTITY))).toBe(BAD);
    expect(parseCpus(`${MAX_QUANTITY}m`)).toBe(MAX_QUANTITY);
    expect(codeOf(() => parseCpus(`${MAX_QUANTITY + 1}m`))).toBe(BAD);
  });

  it('names the field in its message', () => {
    expect(() => parseCpus('x', 'tasks[0].cpus')).toThrow(/tasks\[0\]\.cpus/);
  });
});

describe('parseMebibytes', () => {
  it('reads binary units into MiB', () => {
    expect(parseMebibytes('512Mi')).toBe(512);
    expect(parseMebibytes('2Gi')).toBe(2048);
    expect(parseMebibytes('1.5Gi')).toBe(1536);
    expect(parseMebibytes('1Ti')).toBe(1024 * 1024);
    expect(parseMebibytes('1024Ki')).toBe(1);
    expect(parseMebibytes('1Pi')).toBe(1024 * 1024 * 1024);
  });

  it('reads a bare number (string or number) as MiB', () => {
    expect(parseMebibytes(512)).toBe(512);
    expect(parseMebibytes('512')).toBe(512);
    expect(parseMebibytes(' 64 ')).toBe(64);
  });

  it('rounds decimal units and fractions up, never under-counting a request', () => {
    // 1e9 B = 953.67 MiB.
    expect(parseMebibytes('1G')).toBe(954);
    expect(parseMebibytes('1M')).toBe(1); // 0.95 MiB
    expect(parseMebibytes('1.5G')).toBe(1431); // 1430.51 MiB
    expect(parseMebibytes('1T')).toBe(953_675); // 953674.3 MiB
    expect(parseMebibytes('1k')).toBe(1);
    expect(parseMebibytes('1K')).toBe(1);
    expect(parseMebibytes('1Ki')).toBe(1);
    expect(parseMebibytes(0.5)).toBe(1);
    expect(parseMebibytes('100.1')).toBe(101);
    expect(parseMebibytes('1048576B')).toBe(1);
    expect(parseMebibytes('1048577B')).toBe(2);
  });

  it('does not round an exact quantity up', () => {
    expect(parseMebibytes('2048Ki')).toBe(2);
    expect(parseMebibytes('0.5Gi')).toBe(512);
    expect(parseMebibytes(100)).toBe(100);
  });

  it('reads zero as zero', () => {
    expect(parseMebibytes('0Mi') === 0).toBe(true);
    expect(parseMebibytes(0) === 0).toBe(true);
  });

  it('refuses negative, NaN, infinite, empty and unknown units', () => {
    for (const raw of [-1, '-1Gi', '-0.5', Number.NaN, 'NaN', Number.POSITIVE_INFINITY, 'Infinity', '1e400Mi']) {
      expect(codeOf(() => parseMebibytes(raw)), String(raw)).toBe(BAD);
    }
    for (const raw of ['', '  ', 'Gi', '5Zi', '5Zb', '2 GiB', '2GiB', '1.2.3Mi', 'lots', '500m', '2gi']) {
      expect(codeOf(() => parseMebibytes(raw)), JSON.stringify(raw)).toBe(BAD);
    }
  });

  it('refuses values that are neither numbers nor strings', () => {
    for (const raw of [{}, { mem: 1 }, [], null, undefined, false]) {
      expect(codeOf(() => parseMebibytes(raw)), String(raw)).toBe(BAD);
    }
  });

  it('refuses a quantity beyond an Int32 column', () => {
    expect(parseMebibytes(MAX_QUANTITY)).toBe(MAX_QUANTITY);
    expect(codeOf(() => parseMebibytes(MAX_QUANTITY + 1))).toBe(BAD);
    expect(codeOf(() => parseMebibytes('2048Ti'))).toBe(BAD); // 2^31 MiB
    expect(parseMebibytes('2047Ti')).toBe(2047 * 1024 * 1024);
  });
});

describe('parseCount', () => {
  it('takes whole numbers and numeric strings', () => {
    expect(parseCount(0, 'gpus')).toBe(0);
    expect(parseCount(4, 'gpus')).toBe(4);
    expect(parseCount('2', 'gpus')).toBe(2);
    expect(parseCount(' 3 ', 'ports')).toBe(3);
  });

  it('refuses fractions, negatives, non-numbers and overflow', () => {
    for (const raw of [1.5, '1.5', 0.1, -1, '-2', Number.NaN, Number.POSITIVE_INFINITY, '', '  ', 'two', '1Gi', {}, [], null, undefined, true]) {
      expect(codeOf(() => parseCount(raw, 'gpus')), String(raw)).toBe(BAD);
    }
    expect(codeOf(() => parseCount(MAX_QUANTITY + 1, 'ports'))).toBe(BAD);
  });
});

describe('formatting', () => {
  it('formats millicores back to cores', () => {
    expect(formatCpus(1500)).toBe('1.5');
    expect(formatCpus(parseCpus('250m'))).toBe('0.25');
  });

  it('formats MiB with the largest exact binary unit, and round-trips', () => {
    expect(formatMebibytes(512)).toBe('512Mi');
    expect(formatMebibytes(2048)).toBe('2Gi');
    expect(formatMebibytes(1536)).toBe('1536Mi');
    expect(formatMebibytes(1024 * 1024)).toBe('1Ti');
    expect(formatMebibytes(0)).toBe('0Mi');
    for (const mib of [1, 512, 1536, 2048, 3 * 1024 * 1024]) expect(parseMebibytes(formatMebibytes(mib))).toBe(mib);
  });
});
