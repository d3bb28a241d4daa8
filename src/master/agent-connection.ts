/**
 * One agent's link to the master, as the master sees it: binary frames in and out (protobuf
 * AgentMessage / MasterMessage, see src/proto) and a close. The transport layer adapts a `ws`
 * socket to it; tests and benchmarks use in-process pairs (src/master/testing/sim-agent.ts).
 *
 * Contract for implementations: `onMessage` callbacks get frames in arrival order; `onClose`
 * fires once, whoever closed; `send` after close is a silent no-op (the master treats a vanished
 * agent through its heartbeat timeout, not through send errors).
 */
export interface AgentConnection {
  send(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
  onMessage(cb: (bytes: Uint8Array) => void): void;
  onClose(cb: () => void): void;
  /** host:port of the peer, for logs and as the agent's address when it advertises none. */
  remoteAddress: string;
}

/** Close codes the master uses (WebSocket numbering: 1xxx standard, 4xxx application). */
export const AgentCloseCode = {
  /** The master is shutting down; the agent keeps its tasks and reconnects with backoff. */
  GOING_AWAY: 1001,
  /** A frame that does not decode, or a message out of protocol order (status before register). */
  PROTOCOL_ERROR: 1002,
  /** The same agent id registered over a newer connection; this one is stale. */
  SUPERSEDED: 4001,
  /** The master declared the agent lost (silent past the heartbeat timeout); it must re-register. */
  DECLARED_LOST: 4002,
  /** The master refused the registration (bad resources, table full). */
  REFUSED: 4003,
} as const;
