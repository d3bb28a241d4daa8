import { Dim } from '../resources/vector.js';
import type { TableBuffers } from './buffers.js';
import { Header, Summary, portWordsFor } from './layout.js';

/**
 * Fixed-length typed-array views over a table's buffers, one set per thread. Fixed-length views are
 * what V8 optimises best; when the table grows, `refresh()` rebuilds them (the memory underneath
 * does not move, so rows read before and after a refresh are the same rows).
 */
export class TableView {
  readonly buffers: TableBuffers;
  readonly header: Int32Array;
  readonly portWords: number;
  readonly maxAttrKeys: number;
  readonly shardSize: number;
  capacity = -1;
  version!: Int32Array;
  state!: Int32Array;
  capCpu!: Int32Array;
  capMem!: Int32Array;
  capDisk!: Int32Array;
  capGpu!: Int32Array;
  usedCpu!: Int32Array;
  usedMem!: Int32Array;
  usedDisk!: Int32Array;
  usedGpu!: Int32Array;
  portBase!: Int32Array;
  portSpan!: Int32Array;
  portsFree!: Int32Array;
  portCap!: Int32Array;
  portCursor!: Int32Array;
  portBits!: Uint32Array;
  attrs!: Int32Array;
  summary!: Int32Array;

  constructor(buffers: TableBuffers) {
    this.buffers = buffers;
    this.header = new Int32Array(buffers.header);
    this.portWords = portWordsFor(buffers.limits.maxPortSpan);
    this.maxAttrKeys = buffers.limits.maxAttrKeys;
    this.shardSize = buffers.limits.shardSize;
    this.refresh();
  }

  /** Rebuilds views if the table grew since the last call. Cheap when it did not (one atomic load). */
  refresh(): void {
    const cap = Atomics.load(this.header, Header.CAPACITY);
    if (cap === this.capacity) return;
    const b = this.buffers;
    const col = (sab: SharedArrayBuffer): Int32Array => new Int32Array(sab, 0, cap);
    this.version = col(b.version);
    this.state = col(b.state);
    this.capCpu = col(b.cap[Dim.CPU]!);
    this.capMem = col(b.cap[Dim.MEM]!);
    this.capDisk = col(b.cap[Dim.DISK]!);
    this.capGpu = col(b.cap[Dim.GPU]!);
    this.usedCpu = col(b.used[Dim.CPU]!);
    this.usedMem = col(b.used[Dim.MEM]!);
    this.usedDisk = col(b.used[Dim.DISK]!);
    this.usedGpu = col(b.used[Dim.GPU]!);
    this.portBase = col(b.portBase);
    this.portSpan = col(b.portSpan);
    this.portsFree = col(b.portsFree);
    this.portCap = col(b.portCap);
    this.portCursor = col(b.portCursor);
    this.portBits = new Uint32Array(b.portBits, 0, cap * this.portWords);
    this.attrs = new Int32Array(b.attrs, 0, cap * this.maxAttrKeys);
    this.summary = new Int32Array(b.summary, 0, Math.ceil(cap / this.shardSize) * Summary.STRIDE);
    this.capacity = cap;
  }

  /** One past the highest row in use, never beyond what this thread's views cover. */
  rowLimit(): number {
    // ROW_LIMIT is published after CAPACITY, so reading it first then refreshing covers it.
    const limit = Atomics.load(this.header, Header.ROW_LIMIT);
    this.refresh();
    return limit < this.capacity ? limit : this.capacity;
  }

  shardCount(rowLimit: number): number {
    return Math.ceil(rowLimit / this.shardSize);
  }

  /** Attribute value id of a row under a key slot (0 = absent). */
  attr(row: number, slot: number): number {
    return this.attrs[row * this.maxAttrKeys + slot]!;
  }
}
