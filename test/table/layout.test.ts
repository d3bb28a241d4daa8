import { describe, expect, it } from 'vitest';
import { DEFAULT_PORT_RANGES, countPorts } from '../../src/resources/ports.js';
import { allocateBuffers, committedBytes, growBuffers } from '../../src/table/buffers.js';
import {
  DEFAULT_LIMITS,
  GROW_STEP_MIN,
  Header,
  NODE_STATE_NAMES,
  NodeState,
  Summary,
  bytesPerRow,
  portWordsFor,
} from '../../src/table/layout.js';
import { NodeTable } from '../../src/table/node-table.js';
import { TableView } from '../../src/table/view.js';

/** Slot values of a layout object, without its size/stride entry. */
function slots(layout: Record<string, number>, sizeKey: string): number[] {
  return Object.entries(layout)
    .filter(([k]) => k !== sizeKey)
    .map(([, v]) => v);
}

describe('layout', () => {
  it('gives every header slot its own word inside the header', () => {
    const s = slots(Header, 'SIZE');
    expect(new Set(s).size).toBe(s.length);
    for (const i of s) {
      expect(Number.isInteger(i)).toBe(true);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(Header.SIZE);
    }
  });

  it('gives every summary slot its own word inside the stride', () => {
    const s = slots(Summary, 'STRIDE');
    expect(new Set(s).size).toBe(s.length);
    for (const i of s) {
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(Summary.STRIDE);
    }
  });

  it('names every node state', () => {
    expect(NODE_STATE_NAMES[NodeState.EMPTY]).toBe('empty');
    expect(NODE_STATE_NAMES[NodeState.UP]).toBe('up');
    expect(NODE_STATE_NAMES[NodeState.DRAINING]).toBe('draining');
    expect(NODE_STATE_NAMES[NodeState.DOWN]).toBe('down');
    expect(NodeState.EMPTY).toBe(0); // zeroed memory reads as "no node"
  });

  it('rounds port words up', () => {
    expect(portWordsFor(1)).toBe(1);
    expect(portWordsFor(32)).toBe(1);
    expect(portWordsFor(33)).toBe(2);
    expect(portWordsFor(1001)).toBe(32);
    expect(portWordsFor(1024)).toBe(32);
  });

  it('defaults fit the Mesos default port range and a positive shard size', () => {
    const span = DEFAULT_PORT_RANGES[DEFAULT_PORT_RANGES.length - 1]!.end - DEFAULT_PORT_RANGES[0]!.begin + 1;
    expect(DEFAULT_LIMITS.maxPortSpan).toBeGreaterThanOrEqual(span);
    expect(countPorts(DEFAULT_PORT_RANGES)).toBeLessThanOrEqual(DEFAULT_LIMITS.maxPortSpan);
    expect(DEFAULT_LIMITS.shardSize).toBeGreaterThan(0);
    expect(DEFAULT_LIMITS.maxNodes).toBeGreaterThanOrEqual(100_000);
  });

  it('bytesPerRow counts 15 Int32 columns, the attribute slots and the port bitmap', () => {
    expect(bytesPerRow(DEFAULT_LIMITS)).toBe(15 * 4 + 16 * 4 + 32 * 4);
    expect(bytesPerRow({ ...DEFAULT_LIMITS, maxAttrKeys: 4, maxPortSpan: 64 })).toBe(15 * 4 + 4 * 4 + 2 * 4);
  });

  it('bytesPerRow agrees with what the buffers commit per row', () => {
    for (const limits of [DEFAULT_LIMITS, { ...DEFAULT_LIMITS, maxAttrKeys: 3, maxPortSpan: 100, shardSize: 64 }]) {
      const b = allocateBuffers(limits);
      const base = committedBytes(b);
      expect(base).toBe(Header.SIZE * 4);
      const rows = 2048;
      growBuffers(b, rows);
      const shards = Math.ceil(rows / limits.shardSize);
      expect(committedBytes(b)).toBe(base + rows * bytesPerRow(limits) + shards * Summary.STRIDE * 4);
    }
  });

  it('grows in place: growBuffers never shrinks and never moves memory', () => {
    const b = allocateBuffers({ ...DEFAULT_LIMITS, maxNodes: 4096 });
    growBuffers(b, 1024);
    const early = new Int32Array(b.cap[0]!);
    early[5] = 42;
    growBuffers(b, 4096);
    expect(new Int32Array(b.cap[0]!)[5]).toBe(42);
    const bytes = committedBytes(b);
    growBuffers(b, 100);
    expect(committedBytes(b)).toBe(bytes);
  });

  it('a new table grows by at least GROW_STEP_MIN rows and publishes capacity and shards in the header', () => {
    const t = new NodeTable();
    expect(t.view.capacity).toBe(0);
    t.addNode({ id: 'a', resources: { cpus: 1, mem: 1 } });
    const cap = Atomics.load(t.view.header, Header.CAPACITY);
    expect(cap).toBeGreaterThanOrEqual(GROW_STEP_MIN);
    expect(t.view.capacity).toBe(cap);
    expect(Atomics.load(t.view.header, Header.SHARDS)).toBe(Math.ceil(cap / t.limits.shardSize));
    expect(Atomics.load(t.view.header, Header.ROW_LIMIT)).toBeGreaterThan(t.rowOf('a'));
    // A second view over the same buffers agrees.
    const other = new TableView(t.buffers);
    expect(other.capacity).toBe(cap);
    expect(other.summary.length).toBe(Math.ceil(cap / t.limits.shardSize) * Summary.STRIDE);
    expect(other.portBits.length).toBe(cap * portWordsFor(t.limits.maxPortSpan));
    expect(other.attrs.length).toBe(cap * t.limits.maxAttrKeys);
  });

  it('never grows past maxNodes', () => {
    const t = new NodeTable({ maxNodes: 10 });
    for (let i = 0; i < 10; i++) t.addNode({ id: `n${i}`, resources: { cpus: 1, mem: 1 } });
    expect(t.view.capacity).toBe(10);
  });
});
