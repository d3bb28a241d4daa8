/**
 * Where each process runs. The proxy under test gets core 0 to itself; the load generator and the
 * backends share the other cores. The proxy is then the only thing limited by its own core, so the
 * targets are compared on the work they do per request, and "direct" (no proxy at all: the load
 * generator and one backend on the client cores) is the ceiling of this rig, not of the backend.
 * The layout is the same for every target. Without taskset or with one core nothing is pinned and
 * the note says so.
 */

export interface CpuLayout {
  /** taskset CPU list for the proxy under test (one balancer thread). */
  proxy: string | undefined;
  /** For load generators and backends. */
  clients: string | undefined;
  /** For a proxy running several threads (the scaling runs): every core. */
  all: string | undefined;
  note: string;
}

export function cpuLayout(cores: number, taskset: boolean): CpuLayout {
  const shared = `${cores} core(s) shared by the load generator, the proxy and the 4 backends (and whatever else runs on this machine)`;
  if (!taskset || cores < 2) {
    return { proxy: undefined, clients: undefined, all: undefined, note: `${shared}; nothing pinned (${taskset ? 'one core' : 'taskset not found'})` };
  }
  const clients = cores === 2 ? '1' : `1-${cores - 1}`;
  return {
    proxy: '0',
    clients,
    all: `0-${cores - 1}`,
    note: `${shared}; proxy pinned to cpu 0, load generator and backends to cpu ${clients}; "direct" is therefore the ceiling of this rig`,
  };
}
