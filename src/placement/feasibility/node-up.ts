import { NodeState } from '../../table/layout.js';
import type { TableView } from '../../table/view.js';

/** Only UP rows take placements: DRAINING and DOWN keep what they run, EMPTY rows hold no node. */
export function nodeUp(v: TableView, row: number): boolean {
  return v.state[row] === NodeState.UP;
}
