import type { TableView } from '../../table/view.js';
import { Reason } from '../status.js';

/**
 * Every scalar resource fits in what the row has free. Returns Reason.NONE or the first dimension
 * that does not fit, in the order cpu, mem, disk, gpu (the order users most often run short of).
 */
export function resourcesFit(v: TableView, row: number, cpu: number, mem: number, disk: number, gpu: number): number {
  if (v.capCpu[row]! - v.usedCpu[row]! < cpu) return Reason.CPU;
  if (v.capMem[row]! - v.usedMem[row]! < mem) return Reason.MEM;
  if (disk > 0 && v.capDisk[row]! - v.usedDisk[row]! < disk) return Reason.DISK;
  if (gpu > 0 && v.capGpu[row]! - v.usedGpu[row]! < gpu) return Reason.GPU;
  return Reason.NONE;
}
