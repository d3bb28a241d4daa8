import type { TaskStatusMsg } from '../proto/index.js';
import { taskStateFromWire } from '../proto/index.js';
import type { TaskRecord } from './store.js';
import { isOnAgent, isTerminal } from './task-states.js';

export interface ReconcilePlan {
  /** Tasks the master placed on this agent and the agent runs: keep them, with what the agent says of them. */
  keep: { task: TaskRecord; reported: TaskStatusMsg }[];
  /** Tasks the master placed on this agent that the agent does not report: they are gone. */
  missing: TaskRecord[];
  /** Ids for Registered.kill_tasks: the agent runs them but the master does not want them. */
  kill: string[];
}

/**
 * Reconciliation when an agent (re-)registers, Mesos style: the agent's list of what it runs is
 * compared with what the master believes runs there.
 *
 * - reported and known on this agent, not ended: kept (never launched twice). If the master had
 *   asked for it to be killed, it is kept until the agent reports it killed, and killed again.
 * - known on this agent but not reported: missing (the launch or the task was lost).
 * - reported but unknown, ended, or the master's record puts it elsewhere (it was replaced):
 *   killed. With `agentWasLost`, everything reported is killed: its tasks were already declared
 *   lost and replaced.
 *
 * Reported tasks that the agent itself says have ended need no kill; their final status follows
 * as an ordinary status update.
 */
export function planReconcile(
  agentId: string,
  known: readonly TaskRecord[],
  reported: readonly TaskStatusMsg[],
  lookup: (id: string) => TaskRecord | undefined,
  agentWasLost: boolean,
): ReconcilePlan {
  const plan: ReconcilePlan = { keep: [], missing: [], kill: [] };
  const seen = new Set<string>();
  for (const r of reported) {
    if (typeof r.taskId !== 'string' || r.taskId === '' || seen.has(r.taskId)) continue;
    seen.add(r.taskId);
    const state = taskStateFromWire(r.state);
    const endedThere = state !== undefined && isTerminal(state);
    const t = lookup(r.taskId);
    const ours = !agentWasLost && t !== undefined && t.agentId === agentId && isOnAgent(t.state);
    if (ours) {
      plan.keep.push({ task: t, reported: r });
      if (t.killRequested && !endedThere) plan.kill.push(t.id);
    } else if (!endedThere) {
      plan.kill.push(r.taskId);
    }
  }
  for (const t of known) if (!seen.has(t.id) && isOnAgent(t.state)) plan.missing.push(t);
  return plan;
}
