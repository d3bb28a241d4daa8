import type { Allocator } from '../../src/allocator/allocator.js';
import { NodeState } from '../../src/table/layout.js';

export interface Audit {
  overcommittedNodes: number;
  utilization: { cpus: number; mem: number };
  nodesUsed: number;
}

/**
 * Re-reads the shared table after a run, independent of the allocator's bookkeeping: a node is
 * over-committed if any used column exceeds its capacity or went negative. Utilisation is
 * used / capacity summed over up nodes.
 */
export function auditTable(a: Allocator): Audit {
  const v = a.table.view;
  const limit = v.rowLimit();
  let over = 0;
  let capC = 0;
  let useC = 0;
  let capM = 0;
  let useM = 0;
  let used = 0;
  for (let r = 0; r < limit; r++) {
    const st = v.state[r];
    if (st === NodeState.EMPTY) continue;
    const bad =
      v.usedCpu[r]! > v.capCpu[r]! ||
      v.usedMem[r]! > v.capMem[r]! ||
      v.usedDisk[r]! > v.capDisk[r]! ||
      v.usedGpu[r]! > v.capGpu[r]! ||
      v.usedCpu[r]! < 0 ||
      v.usedMem[r]! < 0 ||
      v.portsFree[r]! < 0;
    if (bad) over++;
    if (st !== NodeState.UP) continue;
    capC += v.capCpu[r]!;
    useC += v.usedCpu[r]!;
    capM += v.capMem[r]!;
    useM += v.usedMem[r]!;
    if (v.usedCpu[r]! > 0 || v.usedMem[r]! > 0) used++;
  }
  return {
    overcommittedNodes: over,
    utilization: { cpus: capC > 0 ? useC / capC : 0, mem: capM > 0 ? useM / capM : 0 },
    nodesUsed: used,
  };
}
