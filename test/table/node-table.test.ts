import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/api/errors.js';
import { ABSENT } from '../../src/resources/attributes.js';
import { CommitResult, tryCommit } from '../../src/table/commit.js';
import { Header, NodeState } from '../../src/table/layout.js';
import { type NodeSpec, NodeTable } from '../../src/table/node-table.js';
import { TableView } from '../../src/table/view.js';
import { codeOf, node } from './helpers.js';

const MiB = 1024 * 1024;

describe('NodeTable: adding and reading back', () => {
  it('round-trips a node through snapshot, in table units', () => {
    const t = new NodeTable();
    const row = t.addNode({
      id: 'n1',
      resources: { cpus: '1.5', mem: '2Gi', disk: '10G', gpus: 2 },
      ports: '9000,8000-8009',
      attributes: { zone: 'a', rack: 'r1' },
    });
    expect(row).toBe(0);
    expect(t.size).toBe(1);
    expect(t.hasNode('n1')).toBe(true);
    expect(t.rowOf('n1')).toBe(0);
    expect(t.idOf(0)).toBe('n1');
    expect(t.stateOf('n1')).toBe(NodeState.UP);
    expect(t.snapshot('n1')).toEqual({
      id: 'n1',
      row: 0,
      state: 'up',
      capacity: { cpus: 1500, mem: 2048, disk: 9537, gpus: 2, ports: 11 },
      used: { cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 },
      attributes: { zone: 'a', rack: 'r1' },
      portRanges: [
        { begin: 8000, end: 8009 },
        { begin: 9000, end: 9000 },
      ],
    });
    const v = t.view;
    expect(v.capCpu[row]).toBe(1500);
    expect(v.capMem[row]).toBe(2048);
    expect(v.capDisk[row]).toBe(9537);
    expect(v.capGpu[row]).toBe(2);
    expect(v.portsFree[row]).toBe(11);
    expect(v.portBase[row]).toBe(8000);
    expect(v.portSpan[row]).toBe(1001);
  });

  it('defaults to no disk, no gpus and the Mesos port range', () => {
    const t = new NodeTable();
    t.addNode({ id: 'n', resources: { cpus: 1, mem: 1024 } });
    const s = t.snapshot('n');
    expect(s.capacity).toEqual({ cpus: 1000, mem: 1024, disk: 0, gpus: 0, ports: 1001 });
    expect(s.portRanges).toEqual([{ begin: 31000, end: 32000 }]);
  });

  it('snapshots are copies: mutating one does not touch the table', () => {
    const t = new NodeTable();
    t.addNode(node('n', { attributes: { zone: 'a' } }));
    const s = t.snapshot('n');
    s.attributes.zone = 'b';
    s.portRanges[0]!.begin = 1;
    expect(t.snapshot('n').attributes.zone).toBe('a');
    expect(t.snapshot('n').portRanges[0]!.begin).toBe(31000);
  });

  it('does not keep a reference to the caller\'s attribute record', () => {
    const t = new NodeTable();
    const attributes = { zone: 'a' };
    t.addNode(node('n', { attributes }));
    attributes.zone = 'b';
    expect(t.snapshot('n').attributes).toEqual({ zone: 'a' });
  });

  it('assigns distinct rows and lists ids and rows', () => {
    const t = new NodeTable();
    const rows = ['a', 'b', 'c'].map((id) => t.addNode(node(id)));
    expect(new Set(rows).size).toBe(3);
    expect([...t.nodeIds()].sort()).toEqual(['a', 'b', 'c']);
    expect([...t.rows()].sort()).toEqual([...rows].sort());
    expect(t.view.rowLimit()).toBeGreaterThan(Math.max(...rows));
  });

  it('records the largest capacity per dimension in the header', () => {
    const t = new NodeTable();
    t.addNode({ id: 'a', resources: { cpus: 8, mem: 1024, disk: 10, gpus: 1 }, ports: '1-10' });
    t.addNode({ id: 'b', resources: { cpus: 2, mem: 4096, disk: 5, gpus: 4 }, ports: '1-5' });
    const h = t.view.header;
    expect(h[Header.MAX_CAP_CPU]).toBe(8000);
    expect(h[Header.MAX_CAP_MEM]).toBe(4096);
    expect(h[Header.MAX_CAP_DISK]).toBe(10);
    expect(h[Header.MAX_CAP_GPU]).toBe(4);
    expect(h[Header.MAX_CAP_PORTS]).toBe(10);
  });

  it('bumps the topology generation on add, state change and removal', () => {
    const t = new NodeTable();
    const gen = (): number => Atomics.load(t.view.header, Header.TOPOLOGY_GEN);
    const g0 = gen();
    t.addNode(node('a'));
    const g1 = gen();
    expect(g1).toBeGreaterThan(g0);
    t.setState('a', NodeState.DRAINING);
    const g2 = gen();
    expect(g2).toBeGreaterThan(g1);
    t.removeNode('a');
    expect(gen()).toBeGreaterThan(g2);
  });
});

describe('NodeTable: attributes', () => {
  it('interns attributes: view.attr(row, slot) is the interner id of the value', () => {
    const t = new NodeTable();
    const r1 = t.addNode(node('n1', { attributes: { zone: 'a', rack: 'r1' } }));
    const r2 = t.addNode(node('n2', { attributes: { zone: 'b' } }));
    const r3 = t.addNode(node('n3', { attributes: { zone: 'a' } }));
    const ix = t.interner;
    const zone = ix.slotOf('zone');
    const rack = ix.slotOf('rack');
    expect(zone).toBeGreaterThanOrEqual(0);
    expect(rack).toBeGreaterThanOrEqual(0);
    const a = ix.valueIdOf(zone, 'a');
    const b = ix.valueIdOf(zone, 'b');
    expect(a).not.toBe(ABSENT);
    expect(b).not.toBe(ABSENT);
    expect(a).not.toBe(b);
    expect(t.view.attr(r1, zone)).toBe(a);
    expect(t.view.attr(r2, zone)).toBe(b);
    expect(t.view.attr(r3, zone)).toBe(a);
    expect(t.view.attr(r1, rack)).toBe(ix.valueIdOf(rack, 'r1'));
    expect(t.view.attr(r2, rack)).toBe(ABSENT);
  });

  it('clears a reused row\'s attributes', () => {
    const t = new NodeTable();
    t.addNode(node('old', { attributes: { zone: 'a', rack: 'r1' } }));
    t.removeNode('old');
    const row = t.addNode(node('new', { attributes: { zone: 'b' } }));
    const ix = t.interner;
    expect(t.view.attr(row, ix.slotOf('zone'))).toBe(ix.valueIdOf(ix.slotOf('zone'), 'b'));
    expect(t.view.attr(row, ix.slotOf('rack'))).toBe(ABSENT);
  });
});

describe('NodeTable: refusals', () => {
  it('refuses a duplicate id and leaves the table unchanged', () => {
    const t = new NodeTable();
    t.addNode(node('n1', { resources: { cpus: 2, mem: 512 } }));
    const before = t.snapshot('n1');
    const limit = t.view.rowLimit();
    const gen = Atomics.load(t.view.header, Header.TOPOLOGY_GEN);
    expect(codeOf(() => t.addNode(node('n1', { resources: { cpus: 64, mem: 65536 } })))).toBe(ErrorCodes.DUPLICATE_NODE);
    expect(t.size).toBe(1);
    expect(t.snapshot('n1')).toEqual(before);
    expect(t.view.rowLimit()).toBe(limit);
    expect(Atomics.load(t.view.header, Header.TOPOLOGY_GEN)).toBe(gen);
    expect(t.view.header[Header.MAX_CAP_CPU]).toBe(2000);
  });

  it('reports unknown nodes with BRL_ERR_UNKNOWN_NODE', () => {
    const t = new NodeTable();
    t.addNode(node('known'));
    const UNKNOWN = ErrorCodes.UNKNOWN_NODE;
    expect(codeOf(() => t.rowOf('nope'))).toBe(UNKNOWN);
    expect(codeOf(() => t.snapshot('nope'))).toBe(UNKNOWN);
    expect(codeOf(() => t.stateOf('nope'))).toBe(UNKNOWN);
    expect(codeOf(() => t.setState('nope', NodeState.DOWN))).toBe(UNKNOWN);
    expect(codeOf(() => t.removeNode('nope'))).toBe(UNKNOWN);
    expect(t.hasNode('nope')).toBe(false);
    expect(t.idOf(12345)).toBeUndefined();
    t.removeNode('known');
    expect(codeOf(() => t.removeNode('known'))).toBe(UNKNOWN);
  });

  const bad: [string, unknown, string][] = [
    ['an empty id', { id: '', resources: { cpus: 1, mem: 1 } }, ErrorCodes.INVALID_ARGUMENT],
    ['a numeric id', { id: 7, resources: { cpus: 1, mem: 1 } }, ErrorCodes.INVALID_ARGUMENT],
    ['no resources', { id: 'x' }, ErrorCodes.BAD_RESOURCES],
    ['null resources', { id: 'x', resources: null }, ErrorCodes.BAD_RESOURCES],
    ['garbage cpus', { id: 'x', resources: { cpus: 'lots', mem: 1 } }, ErrorCodes.BAD_QUANTITY],
    ['negative cpus', { id: 'x', resources: { cpus: -1, mem: 1 } }, ErrorCodes.BAD_QUANTITY],
    ['missing mem', { id: 'x', resources: { cpus: 1 } }, ErrorCodes.BAD_QUANTITY],
    ['an unknown mem unit', { id: 'x', resources: { cpus: 1, mem: '5Zi' } }, ErrorCodes.BAD_QUANTITY],
    ['fractional gpus', { id: 'x', resources: { cpus: 1, mem: 1, gpus: 0.5 } }, ErrorCodes.BAD_QUANTITY],
    ['garbage ports', { id: 'x', resources: { cpus: 1, mem: 1 }, ports: 'http' }, ErrorCodes.BAD_PORT_RANGE],
    ['overlapping ports', { id: 'x', resources: { cpus: 1, mem: 1 }, ports: '1-10,5-6' }, ErrorCodes.BAD_PORT_RANGE],
    ['a port span over maxPortSpan', { id: 'x', resources: { cpus: 1, mem: 1 }, ports: '1000-3000' }, ErrorCodes.BAD_PORT_RANGE],
    ['two ports too far apart', { id: 'x', resources: { cpus: 1, mem: 1 }, ports: '1000,5000' }, ErrorCodes.BAD_PORT_RANGE],
    ['a non-string attribute', { id: 'x', resources: { cpus: 1, mem: 1 }, attributes: { zone: 3 } }, ErrorCodes.INVALID_ARGUMENT],
  ];

  for (const [what, spec, code] of bad) {
    it(`refuses ${what} with ${code}, changing nothing`, () => {
      const t = new NodeTable();
      t.addNode(node('ok', { attributes: { zone: 'a' } }));
      const limit = t.view.rowLimit();
      const gen = Atomics.load(t.view.header, Header.TOPOLOGY_GEN);
      const igen = t.interner.generation;
      expect(codeOf(() => t.addNode(spec as NodeSpec))).toBe(code);
      expect(t.size).toBe(1);
      expect(t.view.rowLimit()).toBe(limit);
      expect(Atomics.load(t.view.header, Header.TOPOLOGY_GEN)).toBe(gen);
      expect(t.interner.generation).toBe(igen);
      expect(t.interner.keys()).toEqual(['zone']);
    });
  }

  it('accepts a port span of exactly maxPortSpan', () => {
    const t = new NodeTable({ maxPortSpan: 64 });
    t.addNode(node('a', { ports: '1000-1063' }));
    expect(t.snapshot('a').capacity.ports).toBe(64);
    expect(codeOf(() => t.addNode(node('b', { ports: '1000-1064' })))).toBe(ErrorCodes.BAD_PORT_RANGE);
  });

  it('refuses a node that would need more attribute keys than the table holds', () => {
    const t = new NodeTable({ maxAttrKeys: 2 });
    t.addNode(node('a', { attributes: { zone: 'a' } }));
    expect(codeOf(() => t.addNode(node('b', { attributes: { rack: 'r', row: '1' } })))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(t.size).toBe(1);
    expect(t.interner.keys()).toEqual(['zone']);
    // Known keys cost nothing, and one new key still fits.
    t.addNode(node('c', { attributes: { zone: 'b', rack: 'r' } }));
    expect(t.size).toBe(2);
  });

  // The key loop interns 'good' before it reaches the bad name; the refused node leaves a key behind
  // (parseSpec promises "a bad spec changes nothing").
  it('refuses a bad attribute name without interning the other new keys', () => {
    const t = new NodeTable();
    expect(codeOf(() => t.addNode(node('x', { attributes: { good: 'a', 'bad name': 'b' } })))).toBe(ErrorCodes.BAD_ATTRIBUTE);
    expect(t.size).toBe(0);
    expect(t.interner.keys()).toEqual([]);
  });

  it('refuses bad table options', () => {
    for (const opts of [{ maxNodes: 0 }, { shardSize: -1 }, { maxAttrKeys: 1.5 }, { maxPortSpan: Number.NaN }]) {
      expect(codeOf(() => new NodeTable(opts)), JSON.stringify(opts)).toBe(ErrorCodes.INVALID_ARGUMENT);
    }
  });

  it('refuses a node beyond maxNodes with BRL_ERR_TABLE_FULL, and takes it after a removal', () => {
    const t = new NodeTable({ maxNodes: 3 });
    for (const id of ['a', 'b', 'c']) t.addNode(node(id));
    expect(codeOf(() => t.addNode(node('d')))).toBe(ErrorCodes.TABLE_FULL);
    expect(t.size).toBe(3);
    t.removeNode('b');
    t.addNode(node('d'));
    expect(t.size).toBe(3);
    expect(t.view.rowLimit()).toBe(3);
  });
});

describe('NodeTable: growth and reuse', () => {
  it('grows past its initial capacity; a view made before growth sees new rows after refresh', () => {
    const t = new NodeTable();
    // One machine shape; disk tells the nodes apart.
    const spec = (i: number): NodeSpec => node(`n${i}`, { resources: { cpus: 2, mem: 1024, disk: 1 + i } });
    t.addNode(spec(0));
    const early = new TableView(t.buffers);
    const capBefore = early.capacity;
    expect(early.rowLimit()).toBeGreaterThan(t.rowOf('n0'));
    const N = 3000;
    for (let i = 1; i < N; i++) t.addNode(spec(i));
    expect(t.size).toBe(N);
    expect(t.view.capacity).toBeGreaterThanOrEqual(N);
    expect(capBefore).toBeLessThan(N);
    // The old views are fixed-length: the new rows are not visible until a refresh.
    expect(early.capacity).toBe(capBefore);
    expect(early.capDisk.length).toBe(capBefore);
    const maxRow = Math.max(...t.rows());
    expect(maxRow).toBeGreaterThanOrEqual(capBefore);
    expect(early.rowLimit()).toBeGreaterThan(maxRow); // rowLimit() refreshes
    expect(early.capacity).toBe(t.view.capacity);
    for (let i = 0; i < N; i++) {
      const row = t.rowOf(`n${i}`);
      if (early.capDisk[row] !== 1 + i || early.state[row] !== NodeState.UP || early.capCpu[row] !== 2000) {
        throw new Error(`row ${row} of n${i} reads wrong through the early view`);
      }
    }
    // Same memory: a write through one view is seen through the other.
    const r = t.rowOf('n2500');
    expect(tryCommit(early, r, Atomics.load(early.version, r), 500, 10, 0, 0, 0, new Int32Array(0), 0)).toBe(CommitResult.OK);
    expect(t.snapshot('n2500').used.cpus).toBe(500);
    expect(t.view.usedMem[r]).toBe(10);
  });

  it('refresh() alone also picks up growth', () => {
    const t = new NodeTable();
    const early = new TableView(t.buffers);
    expect(early.capacity).toBe(0);
    for (let i = 0; i < 2000; i++) t.addNode(node(`n${i}`));
    early.refresh();
    expect(early.capacity).toBe(t.view.capacity);
    expect(early.state[t.rowOf('n1999')]).toBe(NodeState.UP);
    expect(early.summary.length).toBe(t.view.summary.length);
  });

  it('reuses removed rows for nodes of the same shape instead of growing', () => {
    const t = new NodeTable();
    for (let i = 0; i < 1024; i++) t.addNode(node(`n${i}`));
    const bytes = t.committedBytes;
    const limit = t.view.rowLimit();
    const freed = new Set<number>();
    for (let i = 0; i < 1024; i += 2) {
      freed.add(t.rowOf(`n${i}`));
      t.removeNode(`n${i}`);
    }
    expect(t.size).toBe(512);
    for (const row of freed) {
      expect(t.view.state[row]).toBe(NodeState.EMPTY);
      expect(t.idOf(row)).toBeUndefined();
    }
    const reused = new Set<number>();
    for (let i = 0; i < 512; i++) reused.add(t.addNode(node(`m${i}`, { attributes: { gen: '2' } })));
    expect(reused).toEqual(freed);
    expect(t.size).toBe(1024);
    expect(t.committedBytes).toBe(bytes);
    expect(t.view.rowLimit()).toBe(limit);
    const s = t.snapshot('m0');
    expect(s.attributes).toEqual({ gen: '2' });
    expect(s.used).toEqual({ cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 });
  });

  it('reuses removed rows for nodes of another shape within the documented waste bound', () => {
    const t = new NodeTable();
    for (let i = 0; i < 1024; i++) t.addNode(node(`n${i}`));
    for (let i = 0; i < 1024; i += 2) t.removeNode(`n${i}`);
    for (let i = 0; i < 512; i++) t.addNode(node(`m${i}`, { resources: { cpus: 64, mem: '512Gi' } }));
    expect(t.size).toBe(1024);
    expect(t.snapshot('m511').capacity.cpus).toBe(64_000);
    // node-table.ts: ROW_LIMIT <= max(nodes + (classes + 1) * shardSize, 4/3 * (nodes + shardSize)).
    const shard = t.limits.shardSize;
    expect(t.view.rowLimit()).toBeLessThanOrEqual(Math.max(1024 + 3 * shard, (4 / 3) * (1024 + shard)));
  });

  it('a reused row starts empty even if the previous node held resources and ports', () => {
    // One row only, so the new node must land on the old one's row.
    const t = new NodeTable({ maxNodes: 1 });
    const row = t.addNode(node('old'));
    const out = new Int32Array(4);
    expect(tryCommit(t.view, row, Atomics.load(t.view.version, row), 1000, 1024, 10, 0, 4, out, 0)).toBe(CommitResult.OK);
    t.removeNode('old');
    expect(t.addNode(node('new'))).toBe(row);
    expect(t.snapshot('new').used).toEqual({ cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 });
    expect(t.view.portsFree[row]).toBe(10);
  });

  it('moves a row\'s version on removal, so a plan made on the old occupant cannot commit', () => {
    const t = new NodeTable({ maxNodes: 1 });
    const row = t.addNode(node('old'));
    const planned = Atomics.load(t.view.version, row);
    t.removeNode('old');
    t.addNode(node('new'));
    expect(tryCommit(t.view, row, planned, 100, 1, 0, 0, 0, new Int32Array(0), 0)).toBe(CommitResult.CONFLICT);
  });

  it('stays under 64 MiB with 100,000 nodes of one shape', () => {
    const t = new NodeTable();
    for (let i = 0; i < 100_000; i++) {
      t.addNode({ id: `n${i}`, resources: { cpus: 8, mem: '32Gi', disk: '200Gi' }, attributes: { zone: `z${i % 8}` } });
    }
    expect(t.size).toBe(100_000);
    expect(t.committedBytes).toBeGreaterThan(0);
    expect(t.committedBytes).toBeLessThan(64 * MiB);
    expect(t.snapshot('n99999').capacity.mem).toBe(32 * 1024);
  });

  it('stays under 64 MiB with 100,000 nodes of four interleaved shapes (as the benchmark cluster)', () => {
    const shapes = [
      { cpus: 16, mem: '64Gi', gpus: 0 },
      { cpus: 32, mem: '64Gi', gpus: 0 },
      { cpus: 64, mem: '512Gi', gpus: 0 },
      { cpus: 32, mem: '256Gi', gpus: 8 },
    ];
    const t = new NodeTable();
    let x = 12345;
    for (let i = 0; i < 100_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      t.addNode({ id: `n${i}`, resources: { ...shapes[x >>> 30]!, disk: '500Gi' }, attributes: { zone: `z${i % 3}` } });
    }
    expect(t.size).toBe(100_000);
    expect(t.committedBytes).toBeGreaterThan(0);
    expect(t.committedBytes).toBeLessThan(64 * MiB);
  });
});

describe('NodeTable: states', () => {
  it('moves between up, draining and down, keeping what the node holds', () => {
    const t = new NodeTable();
    const row = t.addNode(node('n'));
    const v = t.view;
    expect(tryCommit(v, row, Atomics.load(v.version, row), 1000, 0, 0, 0, 0, new Int32Array(0), 0)).toBe(CommitResult.OK);
    t.setState('n', NodeState.DRAINING);
    expect(t.stateOf('n')).toBe(NodeState.DRAINING);
    expect(t.snapshot('n').state).toBe('draining');
    expect(t.snapshot('n').used.cpus).toBe(1000);
    t.setState('n', NodeState.DOWN);
    expect(t.snapshot('n').state).toBe('down');
    expect(v.state[row]).toBe(NodeState.DOWN);
    t.setState('n', NodeState.UP);
    expect(t.snapshot('n').state).toBe('up');
    expect(t.snapshot('n').used.cpus).toBe(1000);
    // Every state change takes the row lock, so versions stay even and move.
    expect(Atomics.load(v.version, row) & 1).toBe(0);
  });

  it('refuses EMPTY through setState (removeNode empties a row)', () => {
    const t = new NodeTable();
    t.addNode(node('n'));
    expect(codeOf(() => t.setState('n', NodeState.EMPTY))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(t.stateOf('n')).toBe(NodeState.UP);
  });
});
