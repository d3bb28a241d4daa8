/**
 * The agent: `Agent` runs real tasks on this machine; `SimulatedAgent` speaks the same protocol with no processes
 * behind it (benchmarks, large-cluster tests). Both use MasterConnection for the wire.
 */
export { Agent } from './agent.js';
export type { AgentOptions, AgentTaskView } from './agent.js';
export { SimulatedAgent, startSimulatedAgents, DEFAULT_SIM_PROFILES, DEFAULT_SIM_ZONES } from './simulated.js';
export type { SimulatedAgentOptions, SimulatedBehavior, SimulatedFleet, SimulatedFleetOptions, SimulatedProfile } from './simulated.js';
export { MasterConnection, AGENT_WS_PATH, AGENT_VERSION, masterUrl } from './connection.js';
export type { ConnectionHandlers, ConnectionState, MasterConnectionOptions } from './connection.js';
export { StatusUpdateQueue, DEFAULT_STATUS_RETRY } from './status-updates.js';
export { SandboxGc, DEFAULT_SANDBOX_GC } from './sandbox-gc.js';
export type { SandboxGcOptions } from './sandbox-gc.js';
export type { StatusRetryOptions } from './status-updates.js';
export { Backoff, DEFAULT_BACKOFF } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { TimerQueue, sharedTimers } from './timers.js';
export type { Timer } from './timers.js';
export { parseOffer } from './offer.js';
export type { AgentOffer } from './offer.js';
export { deriveAgentId, loadOrCreateAgentId, AGENT_ID_FILE } from './agent-id.js';
export type { TaskPhase } from './task.js';
export { reapOrphans, ORPHAN_KILL_GRACE_MS } from './orphan-reaper.js';
export type { ReapOptions, ReapOutcome, ReapResult } from './orphan-reaper.js';
export { CHECKPOINT_DIR } from './executor/checkpoint.js';
export type { TaskCheckpoint } from './executor/checkpoint.js';
export type { ProcessIdentity } from './isolation/proc.js';
