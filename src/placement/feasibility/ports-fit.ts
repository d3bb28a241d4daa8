import type { TableView } from '../../table/view.js';

/** Enough free ports in the row's ranges (which ports is decided at commit, under the row lock). */
export function portsFit(v: TableView, row: number, ports: number): boolean {
  return ports === 0 || v.portsFree[row]! >= ports;
}
