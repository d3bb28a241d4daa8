import { Header, NodeState } from './layout.js';
import { onCommit, onFreed } from './summary.js';
import type { TableView } from './view.js';

/**
 * Optimistic commit on the shared table (Omega-style).
 *
 * Every row has a version word. Even means stable, odd means a writer holds the row. A planner reads
 * the version (must be even), reads the row without locks, and decides. To commit it
 * compare-exchanges version v -> v+1: success proves no other writer touched the row since it was
 * read, so the plan is still valid. It then re-checks the fit anyway (cheap, and it makes "no node is
 * ever over-committed" hold even for a careless caller), writes used columns and ports, and publishes
 * v+2 with a sequentially consistent store, which also publishes the plain writes before it.
 * A failed exchange is a conflict: the caller re-reads the row (or re-plans) and tries again.
 */
export const CommitResult = {
  OK: 0,
  /** Another writer moved the version; re-read and retry. */
  CONFLICT: 1,
  /** The row no longer fits this task (or is no longer UP): re-plan elsewhere. */
  NO_FIT: 2,
} as const;

/** Spins before a release gives the CPU back; a writer holds a row for tens of nanoseconds. */
const SPIN_LIMIT = 1 << 20;

export interface TaskShape {
  cpu: number;
  mem: number;
  disk: number;
  gpu: number;
  ports: number;
}

/** True when row fits the request now (plain reads: planners call it before committing). */
export function fitsRow(v: TableView, row: number, cpu: number, mem: number, disk: number, gpu: number, ports: number): boolean {
  return (
    v.state[row] === NodeState.UP &&
    v.capCpu[row]! - v.usedCpu[row]! >= cpu &&
    v.capMem[row]! - v.usedMem[row]! >= mem &&
    v.capDisk[row]! - v.usedDisk[row]! >= disk &&
    v.capGpu[row]! - v.usedGpu[row]! >= gpu &&
    v.portsFree[row]! >= ports
  );
}

/**
 * Commits a task to `row` if its version is still `expect`. Chosen ports are written to
 * `portsOut[portsAt ..]`. Returns a CommitResult.
 */
export function tryCommit(
  v: TableView,
  row: number,
  expect: number,
  cpu: number,
  mem: number,
  disk: number,
  gpu: number,
  ports: number,
  portsOut: Int32Array,
  portsAt: number,
): number {
  if ((expect & 1) !== 0) return CommitResult.CONFLICT;
  if (Atomics.compareExchange(v.version, row, expect, (expect + 1) | 0) !== expect) return CommitResult.CONFLICT;
  if (!fitsRow(v, row, cpu, mem, disk, gpu, ports)) {
    // Nothing changed: put the same even version back (a bump would cause needless conflicts).
    Atomics.store(v.version, row, expect);
    return CommitResult.NO_FIT;
  }
  v.usedCpu[row] = v.usedCpu[row]! + cpu;
  v.usedMem[row] = v.usedMem[row]! + mem;
  v.usedDisk[row] = v.usedDisk[row]! + disk;
  v.usedGpu[row] = v.usedGpu[row]! + gpu;
  if (ports > 0) takePorts(v, row, ports, portsOut, portsAt);
  Atomics.store(v.version, row, (expect + 2) | 0);
  onCommit(v, row, cpu, mem);
  return CommitResult.OK;
}

/** Takes the row lock, spinning while another writer holds it. Returns the even version held. */
export function lockRow(v: TableView, row: number): number {
  for (let spins = 0; ; spins++) {
    const cur = Atomics.load(v.version, row);
    if ((cur & 1) === 0 && Atomics.compareExchange(v.version, row, cur, (cur + 1) | 0) === cur) return cur;
    if (spins > SPIN_LIMIT) throw new Error(`row ${row} stayed locked for ${SPIN_LIMIT} spins`);
  }
}

export function unlockRow(v: TableView, row: number, held: number): void {
  Atomics.store(v.version, row, (held + 2) | 0);
}

/** Returns a task's resources and ports to its row. */
export function releaseRow(
  v: TableView,
  row: number,
  cpu: number,
  mem: number,
  disk: number,
  gpu: number,
  ports: Int32Array | readonly number[],
): void {
  const held = lockRow(v, row);
  v.usedCpu[row] = v.usedCpu[row]! - cpu;
  v.usedMem[row] = v.usedMem[row]! - mem;
  v.usedDisk[row] = v.usedDisk[row]! - disk;
  v.usedGpu[row] = v.usedGpu[row]! - gpu;
  for (let i = 0; i < ports.length; i++) freePort(v, row, ports[i]!);
  unlockRow(v, row, held);
  onFreed(v, row);
}

/**
 * Charges a row with a task that already runs there, with the exact ports it holds (adoption after
 * a restart). Takes the row lock but never refuses: the task runs whatever the table thinks. Ports
 * outside the row's ranges or already marked are skipped; returns the ports it marked, which are
 * the ones a later releaseRow may free.
 */
export function chargeRow(
  v: TableView,
  row: number,
  cpu: number,
  mem: number,
  disk: number,
  gpu: number,
  ports: readonly number[],
): number[] {
  const held = lockRow(v, row);
  v.usedCpu[row] = v.usedCpu[row]! + cpu;
  v.usedMem[row] = v.usedMem[row]! + mem;
  v.usedDisk[row] = v.usedDisk[row]! + disk;
  v.usedGpu[row] = v.usedGpu[row]! + gpu;
  const marked: number[] = [];
  for (const port of ports) if (markPort(v, row, port)) marked.push(port);
  unlockRow(v, row, held);
  onCommit(v, row, cpu, mem);
  // Not a placement: a placer that remembers its last row as still the best (Placer.refill) must
  // not trust that past a row filled behind its back, so this counts as a topology change.
  Atomics.add(v.header, Header.TOPOLOGY_GEN, 1);
  return marked;
}

/**
 * Marks n free ports of a row as used and writes their numbers out, next-fit: the search starts just past the
 * last port handed out and wraps. Lowest-first would hand a restarted task the port its previous attempt just
 * freed (still in TIME_WAIT, or held by a process that outlived its task) and, when something outside the
 * cluster listens on a port of the range, hand that same port to every retry. The cursor lives in the table, so
 * it starts over at the range's start when the node's row is written again (join, re-registration after a master
 * restart). Caller holds the row.
 */
function takePorts(v: TableView, row: number, n: number, out: Int32Array, at: number): void {
  const base = row * v.portWords;
  const bits = v.portBits;
  const portBase = v.portBase[row]!;
  const span = v.portSpan[row]!;
  const words = (span + 31) >>> 5;
  let start = v.portCursor[row]!;
  if (start >= span || start < 0) start = 0;
  const w0 = start >>> 5;
  let taken = 0;
  let last = start - 1;
  // words + 1 visits: the first word's ports below the cursor come last, on the wrap.
  for (let step = 0; step <= words && taken < n; step++) {
    const w = (w0 + step) % words;
    let word = bits[base + w]!;
    // On the first visit the ports below the cursor count as used (bits past the span are always set).
    let scan = step === 0 ? (word | ((1 << (start & 31)) - 1)) >>> 0 : word;
    while (scan !== 0xffffffff && taken < n) {
      // Lowest zero bit: ~scan & (scan + 1) isolates it.
      const free = ~scan & (scan + 1);
      const bit = 31 - Math.clz32(free);
      scan = (scan | free) >>> 0;
      word = (word | free) >>> 0;
      last = w * 32 + bit;
      out[at + taken++] = portBase + last;
    }
    bits[base + w] = word;
  }
  v.portCursor[row] = last + 1 >= span ? 0 : last + 1;
  v.portsFree[row] = v.portsFree[row]! - n;
}

/** Word index and bit mask of `port` in a row's port bitmap, or -1 when outside its ranges. */
function portSlot(v: TableView, row: number, port: number): number {
  const off = port - v.portBase[row]!;
  if (off < 0 || off >= v.portSpan[row]!) return -1;
  return row * v.portWords + (off >>> 5);
}

/** Marks one port used; false when it is outside the row's ranges or already used. Caller holds the row. */
function markPort(v: TableView, row: number, port: number): boolean {
  const idx = portSlot(v, row, port);
  if (idx < 0) return false;
  const mask = 1 << ((port - v.portBase[row]!) & 31);
  if ((v.portBits[idx]! & mask) !== 0) return false;
  v.portBits[idx] = (v.portBits[idx]! | mask) >>> 0;
  v.portsFree[row] = v.portsFree[row]! - 1;
  return true;
}

/** Frees one port; ports outside the row's ranges or not marked are ignored. Caller holds the row. */
function freePort(v: TableView, row: number, port: number): void {
  const idx = portSlot(v, row, port);
  if (idx < 0) return;
  const mask = 1 << ((port - v.portBase[row]!) & 31);
  if ((v.portBits[idx]! & mask) === 0) return;
  v.portBits[idx] = (v.portBits[idx]! & ~mask) >>> 0;
  v.portsFree[row] = v.portsFree[row]! + 1;
}
