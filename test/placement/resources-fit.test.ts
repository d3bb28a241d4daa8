import { describe, expect, it } from 'vitest';
import { nodeUp } from '../../src/placement/feasibility/node-up.js';
import { resourcesFit } from '../../src/placement/feasibility/resources-fit.js';
import { Reason } from '../../src/placement/status.js';
import { NodeState } from '../../src/table/layout.js';
import { cluster, spec, use } from './helpers.js';

/** One node: 4 cpus (4000m), 8 GiB (8192 MiB), 100 GiB disk (102400 MiB), 2 gpus. */
function one() {
  const c = cluster([spec('n', 4, 8, 2)]);
  return { c, v: c.v, row: c.row.n! };
}

describe('resourcesFit', () => {
  it('passes a request that exactly fills the node', () => {
    const { v, row } = one();
    expect(resourcesFit(v, row, 4000, 8192, 102_400, 2)).toBe(Reason.NONE);
    expect(resourcesFit(v, row, 0, 0, 0, 0)).toBe(Reason.NONE);
  });

  it('names each dimension that is short', () => {
    const { v, row } = one();
    expect(resourcesFit(v, row, 4001, 0, 0, 0)).toBe(Reason.CPU);
    expect(resourcesFit(v, row, 0, 8193, 0, 0)).toBe(Reason.MEM);
    expect(resourcesFit(v, row, 0, 0, 102_401, 0)).toBe(Reason.DISK);
    expect(resourcesFit(v, row, 0, 0, 0, 3)).toBe(Reason.GPU);
  });

  it('reports the first short dimension in the order cpu, mem, disk, gpu', () => {
    const { v, row } = one();
    expect(resourcesFit(v, row, 4001, 8193, 102_401, 3)).toBe(Reason.CPU);
    expect(resourcesFit(v, row, 1, 8193, 102_401, 3)).toBe(Reason.MEM);
    expect(resourcesFit(v, row, 1, 1, 102_401, 3)).toBe(Reason.DISK);
    expect(resourcesFit(v, row, 1, 1, 1, 3)).toBe(Reason.GPU);
  });

  it('checks what is free, not the capacity', () => {
    const { c, v, row } = one();
    use(c, 'n', 3000, 8000, 1);
    expect(resourcesFit(v, row, 1000, 192, 0, 1)).toBe(Reason.NONE);
    expect(resourcesFit(v, row, 1001, 0, 0, 0)).toBe(Reason.CPU);
    expect(resourcesFit(v, row, 0, 193, 0, 0)).toBe(Reason.MEM);
    expect(resourcesFit(v, row, 0, 0, 0, 2)).toBe(Reason.GPU);
  });

  it('lets a gpu-less node take gpu-less work, and refuses it gpu work', () => {
    const c = cluster([spec('cpu-only', 4, 8, 0)]);
    expect(resourcesFit(c.v, c.row['cpu-only']!, 1000, 1024, 0, 0)).toBe(Reason.NONE);
    expect(resourcesFit(c.v, c.row['cpu-only']!, 1000, 1024, 0, 1)).toBe(Reason.GPU);
  });
});

describe('nodeUp', () => {
  it('is true only for UP rows', () => {
    const { c, v, row } = one();
    expect(nodeUp(v, row)).toBe(true);
    c.t.setState('n', NodeState.DRAINING);
    expect(nodeUp(v, row)).toBe(false);
    c.t.setState('n', NodeState.DOWN);
    expect(nodeUp(v, row)).toBe(false);
    c.t.setState('n', NodeState.UP);
    expect(nodeUp(v, row)).toBe(true);
    c.t.removeNode('n');
    expect(nodeUp(v, row)).toBe(false);
  });
});
