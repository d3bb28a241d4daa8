import type { Allocator } from '../allocator/allocator.js';
import { type PortRange, formatPortRanges } from '../resources/ports.js';
import type { AgentConnection } from './agent-connection.js';
import type { AgentStateName, AgentView } from './types.js';

/** One connection, from accept to close; bound to an agent id by its Register. */
export interface AgentSession {
  conn: AgentConnection;
  agentId: string | null;
  closed: boolean;
}

/** What the master knows of an agent. Lives from its first registration until the master stops. */
export interface AgentRecord {
  id: string;
  hostname: string;
  /** Where its tasks' endpoints are reachable: advertise_ip, else the connection's peer host. */
  host: string;
  /** host:port of the connection's far end as last seen (for logs and debugging; the port is ephemeral). */
  peer: string;
  isolation: string;
  attributes: Record<string, string>;
  /** Capacity in table units: millicores, MiB, MiB, gpus. */
  capacity: { cpus: number; mem: number; disk: number; gpus: number };
  ports: PortRange[];
  state: AgentStateName;
  /** Draining survives a loss (an agent that comes back stays drained) and a restart; only an undrain clears it. */
  draining: boolean;
  session: AgentSession | null;
  /** Any message counts as a sign of life (performance.now()), not only heartbeats. */
  lastSeenAt: number;
  lastHeartbeatAt: number;
  registeredAt: number;
}

/** The host part of "host:port", "[v6]:port" or a bare host. */
export function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (v6) return v6[1]!;
  const i = address.lastIndexOf(':');
  return i > 0 && address.indexOf(':') === i ? address.slice(0, i) : address;
}

export function agentView(a: AgentRecord, allocator: Allocator, tasks: number): AgentView {
  let used = { cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 };
  if (allocator.table.hasNode(a.id)) used = allocator.table.snapshot(a.id).used;
  return {
    id: a.id,
    hostname: a.hostname,
    // The address users see is the same host tasks are reached at.
    address: a.host,
    peer: a.peer,
    state: a.state,
    isolation: a.isolation,
    attributes: { ...a.attributes },
    resources: {
      cpus: a.capacity.cpus / 1000,
      mem: a.capacity.mem,
      disk: a.capacity.disk,
      gpus: a.capacity.gpus,
      ports: formatPortRanges(a.ports),
    },
    used: { cpus: used.cpus / 1000, mem: used.mem, disk: used.disk, gpus: used.gpus, ports: used.ports },
    tasks,
    lastHeartbeatAt: a.lastHeartbeatAt,
    registeredAt: a.registeredAt,
  };
}
