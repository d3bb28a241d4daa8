import { DIMS } from '../resources/vector.js';
import { Header, Summary, type TableLimits, portWordsFor } from './layout.js';

/**
 * The SharedArrayBuffers behind one node table. Plain data, so it crosses to worker threads as
 * `workerData`; every thread builds its own views over the same memory.
 */
export interface TableBuffers {
  limits: TableLimits;
  header: SharedArrayBuffer;
  version: SharedArrayBuffer;
  state: SharedArrayBuffer;
  cap: SharedArrayBuffer[];
  used: SharedArrayBuffer[];
  portBase: SharedArrayBuffer;
  portSpan: SharedArrayBuffer;
  portsFree: SharedArrayBuffer;
  /** Ports the node offers (its ranges' sizes summed; the span also counts the gaps between ranges). */
  portCap: SharedArrayBuffer;
  /** Offset (from portBase) where the next port search starts: see takePorts in commit.ts. */
  portCursor: SharedArrayBuffer;
  portBits: SharedArrayBuffer;
  attrs: SharedArrayBuffer;
  summary: SharedArrayBuffer;
}

function growable(bytesPerRow: number, maxRows: number): SharedArrayBuffer {
  return new SharedArrayBuffer(0, { maxByteLength: bytesPerRow * maxRows });
}

export function allocateBuffers(limits: TableLimits): TableBuffers {
  const max = limits.maxNodes;
  const maxShards = Math.ceil(max / limits.shardSize);
  const cap: SharedArrayBuffer[] = [];
  const used: SharedArrayBuffer[] = [];
  for (let d = 0; d < DIMS; d++) {
    cap.push(growable(4, max));
    used.push(growable(4, max));
  }
  return {
    limits,
    header: new SharedArrayBuffer(Header.SIZE * 4),
    version: growable(4, max),
    state: growable(4, max),
    cap,
    used,
    portBase: growable(4, max),
    portSpan: growable(4, max),
    portsFree: growable(4, max),
    portCap: growable(4, max),
    portCursor: growable(4, max),
    portBits: growable(4 * portWordsFor(limits.maxPortSpan), max),
    attrs: growable(4 * limits.maxAttrKeys, max),
    summary: growable(4 * Summary.STRIDE, maxShards),
  };
}

/** Grows every column to hold `rows` rows. Growing in place keeps existing views valid. */
export function growBuffers(b: TableBuffers, rows: number): void {
  const shards = Math.ceil(rows / b.limits.shardSize);
  const g = (sab: SharedArrayBuffer, bytesPerRow: number, n: number): void => {
    const want = bytesPerRow * n;
    if (sab.byteLength < want) sab.grow(want);
  };
  g(b.version, 4, rows);
  g(b.state, 4, rows);
  for (let d = 0; d < DIMS; d++) {
    g(b.cap[d]!, 4, rows);
    g(b.used[d]!, 4, rows);
  }
  g(b.portBase, 4, rows);
  g(b.portSpan, 4, rows);
  g(b.portsFree, 4, rows);
  g(b.portCap, 4, rows);
  g(b.portCursor, 4, rows);
  g(b.portBits, 4 * portWordsFor(b.limits.maxPortSpan), rows);
  g(b.attrs, 4 * b.limits.maxAttrKeys, rows);
  g(b.summary, 4 * Summary.STRIDE, shards);
}

/** Bytes actually committed by the table's buffers (what the 64 MiB budget counts). */
export function committedBytes(b: TableBuffers): number {
  let n = b.header.byteLength + b.version.byteLength + b.state.byteLength;
  for (let d = 0; d < DIMS; d++) n += b.cap[d]!.byteLength + b.used[d]!.byteLength;
  n += b.portBase.byteLength + b.portSpan.byteLength + b.portsFree.byteLength + b.portCap.byteLength + b.portCursor.byteLength + b.portBits.byteLength;
  n += b.attrs.byteLength + b.summary.byteLength;
  return n;
}
