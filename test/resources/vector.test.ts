import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/api/errors.js';
import { DIM_NAMES, DIMS, Dim, parseRequest, parseResourceList } from '../../src/resources/vector.js';
import { codeOf, thrown } from './helpers.js';

const BAD = ErrorCodes.BAD_RESOURCES;

describe('parseRequest', () => {
  it('converts every field to table units', () => {
    expect(parseRequest({ cpus: '1.5', mem: '2Gi', disk: '10Gi', gpus: 1, ports: '2' })).toEqual({
      cpus: 1500,
      mem: 2048,
      disk: 10240,
      gpus: 1,
      ports: 2,
    });
    expect(parseRequest({ cpus: 0.25 })).toEqual({ cpus: 250, mem: 0, disk: 0, gpus: 0, ports: 0 });
  });

  it('accepts a request of only ports or only gpus', () => {
    expect(parseRequest({ ports: 1 }).ports).toBe(1);
    expect(parseRequest({ gpus: '2' }).gpus).toBe(2);
  });

  it('refuses a request of nothing', () => {
    for (const input of [{}, { cpus: 0 }, { cpus: '0m', mem: 0, disk: '0Gi', gpus: 0, ports: 0 }]) {
      const err = thrown(() => parseRequest(input));
      expect(err.code).toBe(BAD);
      expect(err.problems).toEqual([{ path: 'resources', message: expect.any(String) }]);
    }
  });

  it('refuses non-objects', () => {
    for (const input of [null, undefined, 1, 'cpus=1', [], [{ cpus: 1 }]]) {
      const err = thrown(() => parseRequest(input, 'tasks[2].resources'));
      expect(err.code).toBe(BAD);
      expect(err.problems.map((p) => p.path)).toEqual(['tasks[2].resources']);
    }
  });

  it('names unknown resource fields by path', () => {
    const err = thrown(() => parseRequest({ cpus: 1, memory: '1Gi', network: 5 }));
    expect(err.code).toBe(BAD);
    expect(err.problems.map((p) => p.path).sort()).toEqual(['resources.memory', 'resources.network']);
    expect(err.httpStatus).toBe(400);
  });

  it('lists every problem at once, each with its path', () => {
    const err = thrown(() =>
      parseRequest({ cpus: -1, mem: '5Zi', disk: 'lots', gpus: 1.5, ports: 'x', colour: 'red' }, 'tasks[3].resources'),
    );
    expect(err.code).toBe(BAD);
    expect(err.problems.map((p) => p.path).sort()).toEqual(
      [
        'tasks[3].resources.colour',
        'tasks[3].resources.cpus',
        'tasks[3].resources.disk',
        'tasks[3].resources.gpus',
        'tasks[3].resources.mem',
        'tasks[3].resources.ports',
      ].sort(),
    );
    for (const p of err.problems) expect(p.message.length).toBeGreaterThan(0);
    expect(err.toJSON()).toEqual({ code: BAD, message: err.message, problems: err.problems });
  });

  it('reports only the bad field when others are fine (and does not add the all-zero problem)', () => {
    const err = thrown(() => parseRequest({ cpus: 0, mem: 'x' }));
    expect(err.problems.map((p) => p.path)).toEqual(['resources.mem']);
  });

  it('treats null as a value to validate, not as absent', () => {
    expect(codeOf(() => parseRequest({ cpus: 1, mem: null }))).toBe(BAD);
  });
});

describe('parseResourceList', () => {
  it('splits name=value pairs without converting them', () => {
    expect(parseResourceList('cpus=4, mem=8Gi,disk=20Gi,gpus=0')).toEqual({ cpus: '4', mem: '8Gi', disk: '20Gi', gpus: '0' });
    expect(parseResourceList('')).toEqual({});
  });

  it('refuses parts without a name', () => {
    expect(codeOf(() => parseResourceList('cpus'))).toBe(BAD);
    expect(codeOf(() => parseResourceList('=4'))).toBe(BAD);
  });
});

describe('dimensions', () => {
  it('names every column in storage order', () => {
    expect(DIMS).toBe(4);
    expect(DIM_NAMES[Dim.CPU]).toBe('cpus');
    expect(DIM_NAMES[Dim.MEM]).toBe('mem');
    expect(DIM_NAMES[Dim.DISK]).toBe('disk');
    expect(DIM_NAMES[Dim.GPU]).toBe('gpus');
  });
});
