import {
  BadAttributeError,
  BadPortRangeError,
  BadResourcesError,
  DuplicateNodeError,
  InvalidArgumentError,
  TableFullError,
  UnknownNodeError,
} from '../api/errors.js';
import { AttributeInterner, isValidAttributeKey } from '../resources/attributes.js';
import { DEFAULT_PORT_RANGES, type PortRange, countPorts, parsePortRanges } from '../resources/ports.js';
import { parseCount, parseCpus, parseMebibytes } from '../resources/units.js';
import { type TableBuffers, allocateBuffers, committedBytes, growBuffers } from './buffers.js';
import { lockRow, unlockRow } from './commit.js';
import { onFreed, onJoin } from './summary.js';
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
  /** Node id by row ('' for an empty row): idOf() is called per placed task, and a flat array of strings
   * is one load where meta[row].id is two dependent ones, each a cache miss on a large table. */
  private readonly ids: string[] = [];
  private readonly rowAssign = new RowAssigner();
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
    const id = this.ids[row];
    return id === undefined || id === '' ? undefined : id;
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
      // Every name is checked before any is interned: a refused node must leave no key behind.
      if (!isValidAttributeKey(k)) throw new BadAttributeError(`node ${spec.id}: attribute name ${JSON.stringify(k)} is not valid`);
    }
    const interner = this.interner;
    const missingKeys = Object.keys(attrs).filter((k) => interner.slotOf(k) < 0);
    if (interner.keys().length + missingKeys.length > this.limits.maxAttrKeys) {
      throw new InvalidArgumentError(
        `node ${spec.id}: attributes would need ${interner.keys().length + missingKeys.length} keys; the table holds ${this.limits.maxAttrKeys}`,
      );
    }
    for (const [k, val] of Object.entries(attrs)) slots.push([interner.internKey(k), val]);

    const row = this.takeRow(classKey(p.cpu, p.mem, p.gpu));
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
    const h = v.header;
    if (p.cpu > h[Header.MAX_CAP_CPU]!) Atomics.store(h, Header.MAX_CAP_CPU, p.cpu);
    if (p.mem > h[Header.MAX_CAP_MEM]!) Atomics.store(h, Header.MAX_CAP_MEM, p.mem);
    if (p.disk > h[Header.MAX_CAP_DISK]!) Atomics.store(h, Header.MAX_CAP_DISK, p.disk);
    if (p.gpu > h[Header.MAX_CAP_GPU]!) Atomics.store(h, Header.MAX_CAP_GPU, p.gpu);
    if (v.portsFree[row]! > h[Header.MAX_CAP_PORTS]!) Atomics.store(h, Header.MAX_CAP_PORTS, v.portsFree[row]!);
    onJoin(v, row);
    this.meta[row] = { id: spec.id, attributes: { ...attrs }, portRanges: p.ports };
    while (this.ids.length < row) this.ids.push('');
    this.ids[row] = spec.id;
    this.rowsById.set(spec.id, row);
    Atomics.add(v.header, Header.TOPOLOGY_GEN, 1);
    return row;
  }

  /** Port bitmap: bit i is port portBase+i; gaps between ranges and bits past the span start as used. */
  private writePorts(row: number, ranges: PortRange[]): void {
    const v = this.view;
    const w0 = row * v.portWords;
    v.portBits.fill(0xffffffff, w0, w0 + v.portWords);
    v.portCursor[row] = 0;
    if (ranges.length === 0) {
      v.portBase[row] = 0;
      v.portSpan[row] = 0;
      v.portsFree[row] = 0;
      v.portCap[row] = 0;
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
    v.portCap[row] = v.portsFree[row]!;
  }

  private takeRow(key: number): number {
    const row = this.rowAssign.take(key, this.size, this.limits);
    if (row < 0) throw new TableFullError(`the node table is full (${this.limits.maxNodes} rows, maxNodes)`);
    if (row >= this.view.capacity) {
      const want = Math.min(this.limits.maxNodes, Math.max(GROW_STEP_MIN, this.view.capacity * 2, row + 1));
      growBuffers(this.buffers, want);
      Atomics.store(this.view.header, Header.CAPACITY, want);
      Atomics.store(this.view.header, Header.SHARDS, Math.ceil(want / this.limits.shardSize));
      this.view.refresh();
    }
    if (row >= this.rowLimit) {
      this.rowLimit = row + 1;
      Atomics.store(this.view.header, Header.ROW_LIMIT, this.rowLimit);
    }
    return row;
  }

  /** Rows below the scan limit that hold no node: the price of grouping rows by class (see RowAssigner). */
  get emptyRows(): number {
    return this.rowLimit - this.size;
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
    this.ids[row] = '';
    this.rowAssign.give(row, this.limits);
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
    if (state === NodeState.UP) onJoin(v, row);
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
      capacity: { cpus: v.capCpu[row]!, mem: v.capMem[row]!, disk: v.capDisk[row]!, gpus: v.capGpu[row]!, ports: v.portCap[row]! },
      used: {
        cpus: v.usedCpu[row]!,
        mem: v.usedMem[row]!,
        disk: v.usedDisk[row]!,
        gpus: v.usedGpu[row]!,
        ports: v.portCap[row]! - v.portsFree[row]!,
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

/** Significant bits kept when bucketing a capacity into a machine class: buckets are 1/8 octave wide. */
const CLASS_MANTISSA_BITS = 3;

/** A capacity's bucket: exact below 16, else its octave and its top CLASS_MANTISSA_BITS bits after the leading one. */
function capacityBucket(x: number): number {
  if (x < 1 << (CLASS_MANTISSA_BITS + 1)) return x;
  const e = 31 - Math.clz32(x);
  return (e << CLASS_MANTISSA_BITS) | ((x >>> (e - CLASS_MANTISSA_BITS)) & ((1 << CLASS_MANTISSA_BITS) - 1));
}

/**
 * A node's machine class: its cpu and mem capacity buckets and whether it has GPUs. Machines of one
 * class differ by less than 1/8 in cpu and mem (common shapes, 16, 24, 32, 48, 64 cores or 64, 96,
 * 128, 256 GiB, each get a bucket of their own), so a shard of one class has near-equal capacity
 * extremes and its GPU penalty applies to all or none of it.
 */
export function classKey(cpu: number, mem: number, gpu: number): number {
  return (capacityBucket(cpu) * 256 + capacityBucket(mem)) * 2 + (gpu > 0 ? 1 : 0);
}

/**
 * Classes that may each keep a partly used shard before the EMPTY-row allowance stops growing with
 * them: one open shard per class is the price of grouping, but a cluster of hundreds of odd shapes
 * would otherwise reserve hundreds of shards; past this, classes share rows instead.
 */
const MAX_OPEN_CLASSES = 64;
/** Above this share of EMPTY rows (1/4), classes borrow rows from each other rather than grow the table. */
const WASTE_SHARE_SHIFT = 2;

interface RowClass {
  key: number;
  /** Free rows of this class's shards, popped from the end (ascending row order within a new shard). */
  free: number[];
}

/**
 * Row assignment by machine class. Shard summaries bound a shard by its extremes (least capacity,
 * fullest row, emptiest row); in a shard that mixes 16-core and 64-core nodes those extremes come
 * from different rows and the bounds are loose, so exact selection reads most of the table. Here
 * every shard belongs to one class and its rows go to that class's nodes only:
 *  - a class fills its shards from their free lists (rows of removed nodes return to the free list
 *    of the shard's class);
 *  - a class with no free row takes a whole shard: one left wholly empty by removals, else a new
 *    one at the end (ROW_LIMIT then moves by up to a shard; its unused rows stay EMPTY and scans
 *    skip them, sampling does not count them as probes);
 *  - a shard whose last node leaves goes back to the pool for any class.
 * Waste bound: a class opens a new shard only while the EMPTY rows of the shards handed out number
 * fewer than max(C * shardSize, handed-out rows / 4), C = min(classes, MAX_OPEN_CLASSES); past
 * that, it borrows a free row of another class (that shard then mixes classes: its bounds loosen,
 * results stay exact). So ROW_LIMIT never exceeds the node count at the last growth plus that
 * allowance plus a shard, i.e. at most max(nodes + (C + 1) * shardSize, 4/3 * (nodes + shardSize))
 * rows, and a node is never refused while an EMPTY row exists below maxNodes.
 */
class RowAssigner {
  private readonly classes = new Map<number, RowClass>();
  /** Owner class of each shard taken so far (null: in the pool). */
  private readonly shardClass: (RowClass | null)[] = [];
  /** Nodes in each shard. */
  private readonly shardNodes: number[] = [];
  /** Shards left wholly empty, for any class. */
  private readonly pool: number[] = [];
  /** Rows of the shards taken so far: the first row never handed to a class. */
  private end = 0;

  /** A row for a node of class `key`, or -1 when the table is full. `nodes` is the current node count. */
  take(key: number, nodes: number, limits: TableLimits): number {
    let cls = this.classes.get(key);
    if (cls === undefined) {
      cls = { key, free: [] };
      this.classes.set(key, cls);
    }
    let row = cls.free.pop();
    if (row === undefined) {
      const open = this.classes.size < MAX_OPEN_CLASSES ? this.classes.size : MAX_OPEN_CLASSES;
      const wasteAllowed = Math.max(open * limits.shardSize, this.end >> WASTE_SHARE_SHIFT);
      if (this.pool.length > 0 || this.end - nodes < wasteAllowed) row = this.takeShard(cls, limits);
      if (row === undefined) row = this.borrow(cls, limits);
    }
    if (row === undefined) return -1;
    this.shardNodes[(row / limits.shardSize) | 0]!++;
    return row;
  }

  /** Returns a removed node's row to its shard's class, or the whole shard to the pool when it empties. */
  give(row: number, limits: TableLimits): void {
    const size = limits.shardSize;
    const shard = (row / size) | 0;
    const cls = this.shardClass[shard]!;
    if (--this.shardNodes[shard]! > 0) {
      cls.free.push(row);
      return;
    }
    // Rare (a class shrank by a whole shard): drop the shard's rows from the free list, O(free rows).
    const lo = shard * size;
    const hi = lo + size;
    let w = 0;
    for (let i = 0; i < cls.free.length; i++) {
      const r = cls.free[i]!;
      if (r < lo || r >= hi) cls.free[w++] = r;
    }
    cls.free.length = w;
    this.shardClass[shard] = null;
    this.pool.push(shard);
  }

  /** Gives `cls` a whole shard (from the pool, else new at the end) and returns its first row. */
  private takeShard(cls: RowClass, limits: TableLimits): number | undefined {
    const size = limits.shardSize;
    let shard = this.pool.pop();
    if (shard === undefined) {
      if (this.end >= limits.maxNodes) return undefined;
      shard = (this.end / size) | 0;
      this.shardNodes.push(0);
      this.shardClass.push(null);
      this.end = Math.min(this.end + size, limits.maxNodes);
    }
    this.shardClass[shard] = cls;
    const lo = shard * size;
    const hi = Math.min(lo + size, limits.maxNodes);
    for (let r = hi - 1; r > lo; r--) cls.free.push(r);
    return lo;
  }

  /** A free row of whichever class has the most; a new shard for `cls` when none has any. */
  private borrow(cls: RowClass, limits: TableLimits): number | undefined {
    let donor: RowClass | undefined;
    for (const c of this.classes.values()) if (c.free.length > 0 && (donor === undefined || c.free.length > donor.free.length)) donor = c;
    return donor !== undefined ? donor.free.pop() : this.takeShard(cls, limits);
  }
}
