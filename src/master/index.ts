export { Master } from './master.js';
export type { MasterOptions, MasterLogger } from './options.js';
export { DEFAULT_KILL_GRACE_MS } from './agent-gateway.js';
export type { AgentConnection } from './agent-connection.js';
export { AgentCloseCode } from './agent-connection.js';
export { canTransition, isTerminal } from './task-states.js';
export { JOB_NAME_RE, MAX_INSTANCES, validateJobSpec } from './job-spec.js';
export type * from './types.js';
