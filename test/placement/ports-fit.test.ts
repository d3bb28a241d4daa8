import { describe, expect, it } from 'vitest';
import { portsFit } from '../../src/placement/feasibility/ports-fit.js';
import { CommitResult, releaseRow, tryCommit } from '../../src/table/commit.js';
import { cluster, spec } from './helpers.js';

describe('portsFit', () => {
  it('compares the request with the free ports of the row', () => {
    const c = cluster([spec('n', 4, 8)]); // 31000-31009: 10 ports
    const row = c.row.n!;
    expect(portsFit(c.v, row, 0)).toBe(true);
    expect(portsFit(c.v, row, 10)).toBe(true);
    expect(portsFit(c.v, row, 11)).toBe(false);
    const out = new Int32Array(4);
    expect(tryCommit(c.v, row, Atomics.load(c.v.version, row), 0, 0, 0, 0, 4, out, 0)).toBe(CommitResult.OK);
    expect(portsFit(c.v, row, 6)).toBe(true);
    expect(portsFit(c.v, row, 7)).toBe(false);
    releaseRow(c.v, row, 0, 0, 0, 0, out);
    expect(portsFit(c.v, row, 10)).toBe(true);
  });

  it('lets a node without ports take work that needs none', () => {
    const c = cluster([{ id: 'n', resources: { cpus: 1, mem: 1 }, ports: [] }]);
    expect(portsFit(c.v, c.row.n!, 0)).toBe(true);
    expect(portsFit(c.v, c.row.n!, 1)).toBe(false);
  });

  it('counts every port of every range', () => {
    const c = cluster([{ id: 'n', resources: { cpus: 1, mem: 1 }, ports: '8000-8004,8010,8020-8023' }]);
    expect(portsFit(c.v, c.row.n!, 10)).toBe(true);
    expect(portsFit(c.v, c.row.n!, 11)).toBe(false);
  });
});
