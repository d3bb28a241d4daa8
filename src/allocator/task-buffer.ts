/**
 * Where batches cross to the workers: columns of task requests and results in SharedArrayBuffers,
 * so a round hands over two integers (a range) instead of cloning objects per task.
 * The allocator writes the request columns, a worker writes the result columns of its range, and
 * the round's completion message orders the two (postMessage is a synchronisation point).
 */
export interface TaskBufferData {
  capacity: number;
  portsCapacity: number;
  /** Request columns: cpu, mem, disk, gpu, ports, policy, cset id (-1 none), job index in the round (-1 none), ports offset. */
  req: SharedArrayBuffer;
  /** Result columns: row (-1 none), status, reason, detail. */
  res: SharedArrayBuffer;
  ports: SharedArrayBuffer;
  /** One Int32 a sub-batch: the next task of its shared part not yet claimed by a thread (see worker.ts). */
  claims: SharedArrayBuffer;
}

export const Req = { CPU: 0, MEM: 1, DISK: 2, GPU: 3, PORTS: 4, POLICY: 5, CSET: 6, JOB: 7, PORTS_AT: 8, STRIDE: 9 } as const;
export const Res = { ROW: 0, STATUS: 1, REASON: 2, DETAIL: 3, STRIDE: 4 } as const;

export function allocateTaskBuffer(capacity: number, portsCapacity: number, subBatches: number): TaskBufferData {
  return {
    capacity,
    portsCapacity,
    req: new SharedArrayBuffer(capacity * Req.STRIDE * 4),
    res: new SharedArrayBuffer(capacity * Res.STRIDE * 4),
    ports: new SharedArrayBuffer(portsCapacity * 4),
    claims: new SharedArrayBuffer(subBatches * 4),
  };
}

/** Typed views over a TaskBufferData, one set per thread. Row-major: a task's fields share a cache line. */
export class TaskBufferView {
  readonly data: TaskBufferData;
  readonly req: Int32Array;
  readonly res: Int32Array;
  readonly ports: Int32Array;
  readonly claims: Int32Array;

  constructor(data: TaskBufferData) {
    this.data = data;
    this.req = new Int32Array(data.req);
    this.res = new Int32Array(data.res);
    this.ports = new Int32Array(data.ports);
    this.claims = new Int32Array(data.claims);
  }
}
