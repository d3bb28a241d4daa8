import type { CompiledConstraints } from '../placement/constraints/compiled.js';
import { REASON_NAMES, Reason, STATUS_NAMES, Status, reasonCode, reasonNotUp } from '../placement/status.js';
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

/** Context for a reason that names what blocked the up nodes: the ones that could not even be asked. */
function notUpNote(n: number): string {
  return `${n} ${n === 1 ? 'node' : 'nodes'} draining or down`;
}

/** The whole request, for a final verdict where each dimension fits some node but no node has them all. */
function wholeRequest(t: Shape): string {
  const parts = [`${formatCpus(t.cpu)} cpus`, `${formatMebibytes(t.mem)} mem`];
  if (t.disk > 0) parts.push(`${formatMebibytes(t.disk)} disk`);
  if (t.gpu > 0) parts.push(`${t.gpu} gpus`);
  if (t.ports > 0) parts.push(`${t.ports} ports`);
  return parts.join(', ');
}

/**
 * Turns a worker's (status, reason word, detail) into words, once per unplaced task, off the hot
 * path. Final verdicts say what no node has ("no node has 64 gpus"); transient ones say what is
 * short now. The reason names what blocked the nodes that are up; nodes draining or down, when
 * some are, are added as context ("... (2 nodes draining or down)") and make "node" read "up node".
 */
export function describeUnplaced(status: number, word: number, detail: number, t: Shape, cset: CompiledConstraints | null): UnplacedDescription {
  const final = status === Status.UNPLACEABLE_FINAL;
  const st = STATUS_NAMES[status] ?? 'error';
  const reason = reasonCode(word);
  const notUp = reasonNotUp(word);
  const node = notUp > 0 ? 'up node' : 'node';
  const note = notUp > 0 ? ` (${notUpNote(notUp)})` : '';
  const res = (code: UnplacedCodeValue, name: string, want: number, have: number, fmt: (n: number) => string): UnplacedDescription => {
    let text: string;
    if (!final) text = `insufficient ${name}: ${fmt(want)} requested, at most ${fmt(have)} free on any ${node}${note}`;
    else if (have >= want) text = `no ${node} has ${wholeRequest(t)} at once${note}`;
    else text = `no ${node} has ${fmt(want)} ${name} (the largest has ${fmt(have)}${notUp > 0 ? `; ${notUpNote(notUp)}` : ''})`;
    return { status: st, code, reason: text };
  };
  switch (reason) {
    case Reason.NO_NODES:
      return { status: st, code: UnplacedCode.NO_NODES, reason: REASON_NAMES[Reason.NO_NODES]! };
    case Reason.NODE_NOT_UP:
      return { status: st, code: UnplacedCode.NODES_NOT_UP, reason: `${REASON_NAMES[Reason.NODE_NOT_UP]!} (${detail} draining or down)` };
    case Reason.CPU:
      return res(UnplacedCode.INSUFFICIENT_CPUS, 'cpus', t.cpu, detail, formatCpus);
    case Reason.MEM:
      return res(UnplacedCode.INSUFFICIENT_MEM, 'mem', t.mem, detail, formatMebibytes);
    case Reason.DISK:
      return res(UnplacedCode.INSUFFICIENT_DISK, 'disk', t.disk, detail, formatMebibytes);
    case Reason.GPU:
      return res(UnplacedCode.INSUFFICIENT_GPUS, 'gpus', t.gpu, detail, String);
    case Reason.PORTS:
      return res(UnplacedCode.INSUFFICIENT_PORTS, 'ports', t.ports, detail, String);
    case Reason.LIMIT: {
      // detail: the index of the limit constraint that blocked most nodes.
      const text = cset?.text[detail];
      const what = text === undefined ? `${REASON_NAMES[Reason.LIMIT]!}:` : `${text} reached`;
      return { status: st, code: UnplacedCode.LIMIT, reason: `${what} on every eligible ${node}${note}` };
    }
    case Reason.DISTINCT_HOSTS:
      return { status: st, code: UnplacedCode.DISTINCT_HOSTS, reason: `distinct hosts: every fitting ${node} already runs an instance${note}` };
    case Reason.CONFLICTS:
      // detail: commit attempts that all lost, or 0 when the diagnosis found a row that fits now.
      return {
        status: st,
        code: UnplacedCode.CONFLICTS,
        reason: detail > 0 ? `${REASON_NAMES[Reason.CONFLICTS]!} (${detail} attempts); retry` : `lost every race for the ${node}s it fits${note}; retry`,
      };
    default:
      if (reason >= Reason.CONSTRAINT_BASE && cset !== null) {
        const text = cset.text[reason - Reason.CONSTRAINT_BASE] ?? '?';
        return {
          status: st,
          code: UnplacedCode.CONSTRAINT,
          reason: final ? `constraint ${text} matches no ${node}${note}` : `constraint ${text} excludes every ${node} with room${note}`,
        };
      }
      return { status: st, code: UnplacedCode.INTERNAL, reason: `placement failed (reason ${reason})` };
  }
}
