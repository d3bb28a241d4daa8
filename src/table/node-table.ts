import {
  BadPortRangeError,
  BadResourcesError,
  DuplicateNodeError,
  InvalidArgumentError,
  TableFullError,
  UnknownNodeError,
} from '../api/errors.js';
import { AttributeInterner } from '../resources/attributes.js';
import { DEFAULT_PORT_RANGES, type PortRange, countPorts, parsePortRanges } from '../resources/ports.js';
import { parseCount, parseCpus, parseMebibytes } from '../resources/units.js';
import { type TableBuffers, allocateBuffers, committedBytes, growBuffers } from './buffers.js';
import { lockRow, raiseSummary, unlockRow } from './commit.js';
import { DEFAULT_LIMITS, GROW_STEP_MIN, Header, NODE_STATE_NAMES, NodeState, type NodeStateValue, type TableLimits } from './layout.js';
import { TableView } from './view.js';

/** A node as an agent describes it. */
export interface NodeSpec {
  id: string;
  resources: { cpus: number | string; mem: number | string; disk?: number | string; gpus?: number | string };
  /** Port ranges the node offers to tasks; Mesos' 31000-32000 when absent. */
  ports?: string | readonly PortRange[];
  attributes?: Record<string, string>;
}

/** A node's row read back from the shared table (for APIs, tests and the benchmark's audit). */
export interface NodeSnapshot {
  id: string;
  row: number;
  state: (typeof NODE_STATE_NAMES)[number];
  capacity: { cpus: number; mem: number; disk: number; gpus: number; ports: number };
  used: { cpus: number; mem: number; disk: number; gpus: number; ports: number };
  attributes: Record<string, string>;
  portRanges: PortRange[];
}

interface RowMeta {
  id: string;
  attributes: Record<string, string>;
  portRanges: PortRange[];
  portCount: number;
}

/**
 * The node table's owner (the allocator's thread). It is the only writer of topology: rows,
 * capacities, attributes, states. Placement threads write only `used` and port bits, through the
 * commit helper. Removing a node frees its row for reuse; the version word makes any plan made on
 * the old occupant fail its commit.
 */
export class NodeTable {
  readonly limits: TableLimits;
  readonly buffers: TableBuffers;
  readonly view: TableView;
  readonly interner: AttributeInterner;
  private readonly rowsById = new Map<string, number>();
  private readonly meta: (RowMeta | undefined)[] = [];
  private readonly freeRows: number[] = [];
  private rowLimit = 0;

  constructor(limits: Partial<TableLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    const l = this.limits;
    for (const [k, v] of Object.entries(l)) {
      if (!Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`table option ${k} must be a positive integer, got ${v}`);
    }
    this.buffers = allocateBuffers(l);
    this.interner = new AttributeInterner(l.maxAttrKeys);
    this.view = new TableView(this.buffers);
  }

  get size(): number {
    return this.rowsById.size;
  }

  /** Bytes the shared buffers hold right now. */
  get committedBytes(): number {
    return committedBytes(this.buffers);
  }

  rowOf(id: string): number {
    const row = this.rowsById.get(id);
    if (row === undefined) throw new UnknownNodeError(id);
    return row;
  }

  hasNode(id: string): boolean {
    return this.rowsById.has(id);
  }

  idOf(row: number): string | undefined {
    return this.meta[row]?.id;
  }

  nodeIds(): IterableIterator<string> {
    return this.rowsById.keys();
  }

  /**
   * Validates a node spec completely before touching the table, so a bad spec changes nothing.
   * Returns the parsed form.
   */
  private parseSpec(spec: NodeSpec): { cpu: number; mem: number; disk: number; gpu: number; ports: PortRange[] } {
    if (spec === null || typeof spec !== 'object') throw new InvalidArgumentError('node spec must be an object');
    if (typeof spec.id !== 'string' || spec.id === '') throw new InvalidArgumentError('node id must be a non-empty string');
    const r = spec.resources;
    if (r === null || typeof r !== 'object') throw new BadResourcesError(`node ${spec.id}: resources must be an object`);
    const cpu = parseCpus(r.cpus, `node ${spec.id} cpus`);
    const mem = parseMebibytes(r.mem, `node ${spec.id} mem`);
    const disk = r.disk === undefined ? 0 : parseMebibytes(r.disk, `node ${spec.id} disk`);
    const gpu = r.gpus === undefined ? 0 : parseCount(r.gpus, `node ${spec.id} gpus`);
    const ports = spec.ports === undefined ? [...DEFAULT_PORT_RANGES] : parsePortRanges(spec.ports);
    if (ports.length > 0) {
      const span = ports[ports.length - 1]!.end - ports[0]!.begin + 1;
      if (span > this.limits.maxPortSpan) {
        throw new BadPortRangeError(
          `node ${spec.id}: ports span ${span} (${ports[0]!.begin}..${ports[ports.length - 1]!.end}); the table allows ${this.limits.maxPortSpan} (maxPortSpan)`,
        );
      }
    }
    return { cpu, mem, disk, gpu, ports };
  }

  addNode(spec: NodeSpec): number {
    const p = this.parseSpec(spec);
    if (this.rowsById.has(spec.id)) throw new DuplicateNodeError(spec.id);
    const attrs = spec.attributes ?? {};
    // Intern keys first: this is the only step that can still refuse the node (too many keys).
    const slots: [number, string][] = [];
    for (const [k, val] of Object.entries(attrs)) {
      if (typeof val !== 'string') throw new InvalidArgumentError(`node ${spec.id}: attribute ${k} must be a string`);
    }
    const interner = this.interner;
    const missingKeys = Object.keys(attrs).filter((k) => interner.slotOf(k) < 0);
    if (interner.keys().length + missingKeys.length > this.limits.maxAttrKeys) {
      throw new InvalidArgumentError(
        `node ${spec.id}: attributes would need ${interner.keys().length + missingKeys.length} keys; the table holds ${this.limits.maxAttrKeys}`,
      );
    }
    for (const [k, val] of Object.entries(attrs)) slots.push([interner.internKey(k), val]);

    const row = this.takeRow();
    const v = this.view;
    const held = lockRow(v, row);
    v.capCpu[row] = p.cpu;
    v.capMem[row] = p.mem;
    v.capDisk[row] = p.disk;
    v.capGpu[row] = p.gpu;
    v.usedCpu[row] = 0;
    v.usedMem[row] = 0;
    v.usedDisk[row] = 0;
    v.usedGpu[row] = 0;
    this.writePorts(row, p.ports);
    const a0 = row * v.maxAttrKeys;
    v.attrs.fill(0, a0, a0 + v.maxAttrKeys);
    for (const [slot, val] of slots) v.attrs[a0 + slot] = interner.internValue(slot, val);
    Atomics.store(v.state, row, NodeState.UP);
    unlockRow(v, row, held);
    raiseSummary(v, row);
    this.meta[row] = { id: spec.id, attributes: { ...attrs }, portRanges: p.ports, portCount: countPorts(p.ports) };
    this.rowsById.set(spec.id, row);
    Atomics.add(v.header, Header.TOPOLOGY_GEN, 1);
    return row;
  }

  /** Port bitmap: bit i is port portBase+i; gaps between ranges and bits past the span start as used. */
  private writePorts(row: number, ranges: PortRange[]): void {
    const v = this.view;
    const w0 = row * v.portWords;
    v.portBits.fill(0xffffffff, w0, w0 + v.portWords);
    if (ranges.length === 0) {
      v.portBase[row] = 0;
      v.portSpan[row] = 0;
      v.portsFree[row] = 0;
      return;
    }
    const base = ranges[0]!.begin;
    for (const r of ranges) {
      for (let p = r.begin; p <= r.end; p++) {
        const off = p - base;
        v.portBits[w0 + (off >>> 5)] = (v.portBits[w0 + (off >>> 5)]! & ~(1 << (off & 31))) >>> 0;
      }
    }
    v.portBase[row] = base;
    v.portSpan[row] = ranges[ranges.length - 1]!.end - base + 1;
    v.portsFree[row] = countPorts(ranges);
  }

  private takeRow(): number {
    const reused = this.freeRows.pop();
    if (reused !== undefined) return reused;
    const row = this.rowLimit;
    if (row >= this.limits.maxNodes) throw new TableFullError(`the node table is full (${this.limits.maxNodes} rows, maxNodes)`);
    if (row >= this.view.capacity) {
      const want = Math.min(this.limits.maxNodes, Math.max(GROW_STEP_MIN, this.view.capacity * 2));
      growBuffers(this.buffers, want);
      Atomics.store(this.view.header, Header.CAPACITY, want);
      Atomics.store(this.view.header, Header.SHARDS, Math.ceil(want / this.limits.shardSize));
      this.view.refresh();
    }
    this.rowLimit = row + 1;
    Atomics.store(this.view.header, Header.ROW_LIMIT, this.rowLimit);
    return row;
  }

  /**
   * Removes a node. Its row is emptied under the row lock and reused later; placements racing with
   * the removal fail their commit (the version moved) and re-plan.
   */
  removeNode(id: string): void {
    const row = this.rowOf(id);
    const v = this.view;
    const held = lockRow(v, row);
    Atomics.store(v.state, row, NodeState.EMPTY);
    v.usedCpu[row] = 0;
    v.usedMem[row] = 0;
    v.usedDisk[row] = 0;
    v.usedGpu[row] = 0;
    unlockRow(v, row, held);
    this.rowsById.delete(id);
    this.meta[row] = undefined;
    this.freeRows.push(row);
    Atomics.add(v.header, Header.TOPOLOGY_GEN, 1);
  }

  /** UP takes placements; DRAINING and DOWN keep what they hold and take nothing new. */
  setState(id: string, state: NodeStateValue): void {
    if (state === NodeState.EMPTY) throw new InvalidArgumentError('use removeNode to empty a row');
    const row = this.rowOf(id);
    const v = this.view;
    const held = lockRow(v, row);
    Atomics.store(v.state, row, state);
    unlockRow(v, row, held);
    if (state === NodeState.UP) raiseSummary(v, row);
    Atomics.add(v.header, Header.TOPOLOGY_GEN, 1);
  }

  stateOf(id: string): NodeStateValue {
    return Atomics.load(this.view.state, this.rowOf(id)) as NodeStateValue;
  }

  snapshot(id: string): NodeSnapshot {
    const row = this.rowOf(id);
    const v = this.view;
    const m = this.meta[row]!;
    return {
      id,
      row,
      state: NODE_STATE_NAMES[v.state[row]!]!,
      capacity: { cpus: v.capCpu[row]!, mem: v.capMem[row]!, disk: v.capDisk[row]!, gpus: v.capGpu[row]!, ports: m.portCount },
      used: {
        cpus: v.usedCpu[row]!,
        mem: v.usedMem[row]!,
        disk: v.usedDisk[row]!,
        gpus: v.usedGpu[row]!,
        ports: m.portCount - v.portsFree[row]!,
      },
      attributes: { ...m.attributes },
      portRanges: m.portRanges.map((r) => ({ ...r })),
    };
  }

  /** Rows currently holding a node (any state but EMPTY). */
  *rows(): IterableIterator<number> {
    for (const row of this.rowsById.values()) yield row;
  }
}
