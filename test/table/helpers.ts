import type { NodeSpec, NodeTable } from '../../src/table/node-table.js';
import { NodeState } from '../../src/table/layout.js';
import type { TableView } from '../../src/table/view.js';

/** A node spec with small defaults; `over` replaces whole fields. */
export function node(id: string, over: Partial<NodeSpec> = {}): NodeSpec {
  return { id, resources: { cpus: 4, mem: '8Gi', disk: '100Gi' }, ports: '31000-31009', ...over };
}

/** Adds nodes in order and returns their rows. */
export function addAll(table: NodeTable, specs: NodeSpec[]): number[] {
  return specs.map((s) => table.addNode(s));
}

/** Throws unless every UP/DRAINING/DOWN row holds no more than its capacity in every dimension. */
export function expectNoOvercommit(v: TableView, rowLimit: number): void {
  for (let r = 0; r < rowLimit; r++) {
    if (v.state[r] === NodeState.EMPTY) continue;
    const bad =
      v.usedCpu[r]! > v.capCpu[r]! ||
      v.usedMem[r]! > v.capMem[r]! ||
      v.usedDisk[r]! > v.capDisk[r]! ||
      v.usedGpu[r]! > v.capGpu[r]! ||
      v.usedCpu[r]! < 0 ||
      v.usedMem[r]! < 0 ||
      v.usedDisk[r]! < 0 ||
      v.usedGpu[r]! < 0 ||
      v.portsFree[r]! < 0;
    if (bad) {
      throw new Error(
        `row ${r} over-committed: cpu ${v.usedCpu[r]}/${v.capCpu[r]} mem ${v.usedMem[r]}/${v.capMem[r]} ` +
          `disk ${v.usedDisk[r]}/${v.capDisk[r]} gpu ${v.usedGpu[r]}/${v.capGpu[r]} portsFree ${v.portsFree[r]}`,
      );
    }
  }
}
export { codeOf, thrown } from '../resources/helpers.js';
