import type { Allocator } from '../allocator/allocator.js';
import type { ResourceVector } from '../resources/vector.js';
import { lockRow, releaseRow, unlockRow } from '../table/commit.js';
import { onCommit } from '../table/summary.js';

interface Adopted {
  nodeId: string;
  row: number;
  cpu: number;
  mem: number;
  disk: number;
  gpu: number;
  /** Only the ports this adoption marked used (a port already taken is not ours to free). */
  ports: number[];
}

/**
 * Which tasks hold resources in the allocator's table, and how to give them back.
 *
 * Tasks placed by the allocator are released through it. Tasks the master *adopts* — running on an
 * agent that re-registered with a restarted master, so no placement of this allocator ever charged
 * them — are charged here, directly on the agent's table row with the table's row lock, with the
 * exact ports the task was launched with. The allocator has no call for "this task already runs
 * there" (see the report on issue 4); until it does, adopted tasks are invisible to its DRF shares
 * and to limit / distinct_hosts accounting, and this ledger is the only one that can release them.
 */
export class Holdings {
  private readonly adopted = new Map<string, Adopted>();

  constructor(private readonly allocator: Allocator) {}

  holds(taskId: string): boolean {
    return this.adopted.has(taskId) || this.allocator.assignmentOf(taskId) !== undefined;
  }

  /**
   * Charges a task that already runs on `nodeId` with `ports`. May over-commit the row: the task
   * runs there whatever the table thinks, and an over-committed row simply takes nothing new.
   */
  adopt(taskId: string, nodeId: string, r: ResourceVector, ports: readonly number[]): void {
    if (this.holds(taskId)) return;
    const table = this.allocator.table;
    const row = table.rowOf(nodeId);
    const v = table.view;
    const held = lockRow(v, row);
    v.usedCpu[row] = v.usedCpu[row]! + r.cpus;
    v.usedMem[row] = v.usedMem[row]! + r.mem;
    v.usedDisk[row] = v.usedDisk[row]! + r.disk;
    v.usedGpu[row] = v.usedGpu[row]! + r.gpus;
    const mine: number[] = [];
    for (const port of ports) {
      const off = port - v.portBase[row]!;
      if (off < 0 || off >= v.portSpan[row]!) continue;
      const idx = row * v.portWords + (off >>> 5);
      const mask = 1 << (off & 31);
      if ((v.portBits[idx]! & mask) !== 0) continue;
      v.portBits[idx] = (v.portBits[idx]! | mask) >>> 0;
      v.portsFree[row] = v.portsFree[row]! - 1;
      mine.push(port);
    }
    unlockRow(v, row, held);
    onCommit(v, row);
    this.adopted.set(taskId, { nodeId, row, cpu: r.cpus, mem: r.mem, disk: r.disk, gpu: r.gpus, ports: mine });
  }

  /** Gives a task's resources back; a no-op for a task that holds none. */
  release(taskId: string): void {
    const a = this.adopted.get(taskId);
    if (a) {
      this.adopted.delete(taskId);
      // The row is the node's as long as the node is in the table (the master never removes nodes).
      if (this.allocator.table.hasNode(a.nodeId)) releaseRow(this.allocator.table.view, a.row, a.cpu, a.mem, a.disk, a.gpu, a.ports);
      return;
    }
    if (this.allocator.assignmentOf(taskId) !== undefined) this.allocator.release(taskId);
  }
}
