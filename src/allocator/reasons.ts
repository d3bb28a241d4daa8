import type { CompiledConstraints } from '../placement/constraints/compiled.js';
import { REASON_NAMES, Reason, STATUS_NAMES, Status } from '../placement/status.js';
import { formatCpus, formatMebibytes } from '../resources/units.js';

/** Stable, machine-readable reason codes for tasks that could not be placed. */
export const UnplacedCode = {
  NO_NODES: 'no_nodes',
  NODES_NOT_UP: 'nodes_not_up',
  INSUFFICIENT_CPUS: 'insufficient_cpus',
  INSUFFICIENT_MEM: 'insufficient_mem',
  INSUFFICIENT_DISK: 'insufficient_disk',
  INSUFFICIENT_GPUS: 'insufficient_gpus',
  INSUFFICIENT_PORTS: 'insufficient_ports',
  CONSTRAINT: 'constraint',
  LIMIT: 'limit',
  DISTINCT_HOSTS: 'distinct_hosts',
  CONFLICTS: 'conflicts',
  CANCELLED: 'cancelled',
  INTERNAL: 'internal',
} as const;
export type UnplacedCodeValue = (typeof UnplacedCode)[keyof typeof UnplacedCode];

export interface UnplacedDescription {
  status: (typeof STATUS_NAMES)[number];
  code: UnplacedCodeValue;
  reason: string;
}

interface Shape {
  cpu: number;
  mem: number;
  disk: number;
  gpu: number;
  ports: number;
}

/**
 * Turns a worker's (status, reason, detail) into words, once per unplaced task, off the hot path.
 * Final verdicts say what no node has ("no node has 64 gpus"); transient ones say what is short now.
 */
export function describeUnplaced(status: number, reason: number, detail: number, t: Shape, cset: CompiledConstraints | null): UnplacedDescription {
  const final = status === Status.UNPLACEABLE_FINAL;
  const st = STATUS_NAMES[status] ?? 'error';
  const res = (code: UnplacedCodeValue, name: string, want: string, have: string): UnplacedDescription => ({
    status: st,
    code,
    reason: final ? `no node has ${want} ${name} (the largest has ${have})` : `insufficient ${name}: ${want} requested, at most ${have} free on any node`,
  });
  switch (reason) {
    case Reason.NO_NODES:
      return { status: st, code: UnplacedCode.NO_NODES, reason: REASON_NAMES[Reason.NO_NODES]! };
    case Reason.NODE_NOT_UP:
      return { status: st, code: UnplacedCode.NODES_NOT_UP, reason: `${REASON_NAMES[Reason.NODE_NOT_UP]!} (${detail} draining or down)` };
    case Reason.CPU:
      return res(UnplacedCode.INSUFFICIENT_CPUS, 'cpus', formatCpus(t.cpu), formatCpus(detail));
    case Reason.MEM:
      return res(UnplacedCode.INSUFFICIENT_MEM, 'mem', formatMebibytes(t.mem), formatMebibytes(detail));
    case Reason.DISK:
      return res(UnplacedCode.INSUFFICIENT_DISK, 'disk', formatMebibytes(t.disk), formatMebibytes(detail));
    case Reason.GPU:
      return res(UnplacedCode.INSUFFICIENT_GPUS, 'gpus', String(t.gpu), String(detail));
    case Reason.PORTS:
      return res(UnplacedCode.INSUFFICIENT_PORTS, 'ports', String(t.ports), String(detail));
    case Reason.LIMIT:
      return { status: st, code: UnplacedCode.LIMIT, reason: `${REASON_NAMES[Reason.LIMIT]!}: every eligible value already holds its quota of this job` };
    case Reason.DISTINCT_HOSTS:
      return { status: st, code: UnplacedCode.DISTINCT_HOSTS, reason: REASON_NAMES[Reason.DISTINCT_HOSTS]! };
    case Reason.CONFLICTS:
      return { status: st, code: UnplacedCode.CONFLICTS, reason: `${REASON_NAMES[Reason.CONFLICTS]!} (${detail} attempts); retry` };
    default:
      if (reason >= Reason.CONSTRAINT_BASE && cset !== null) {
        const text = cset.text[reason - Reason.CONSTRAINT_BASE] ?? '?';
        return {
          status: st,
          code: UnplacedCode.CONSTRAINT,
          reason: final ? `constraint ${text} matches no node` : `constraint ${text} excludes every node with room`,
        };
      }
      return { status: st, code: UnplacedCode.INTERNAL, reason: `placement failed (reason ${reason})` };
  }
}
