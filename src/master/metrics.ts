import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TASK_STATES, type TaskStateName } from '../proto/index.js';
import type { AgentStateName, JobState } from './types.js';

export interface MetricsSource {
  /** Every task the master holds (each retained attempt, ended ones included), by state: what `/v1/tasks` lists. */
  tasksByState(): Partial<Record<TaskStateName, number>>;
  agentsByState(): Record<AgentStateName, number>;
  jobsByState(): Record<JobState, number>;
}

/**
 * Queue-to-assignment latency buckets (seconds): from 1 ms (a batch placed in the first round) to
 * 60 s (a task that waited for capacity).
 */
const PLACEMENT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The master's Prometheus metrics, on a registry of its own (several masters in one process, as in
 * tests, must not collide in the global one). Gauges are computed at scrape time from the master's
 * state, so they cannot drift from it.
 */
export class MasterMetrics {
  readonly registry = new Registry();
  readonly placements: Counter;
  readonly unplaced: Counter<'code'>;
  readonly placementLatency: Histogram;
  readonly transitions: Counter<'state'>;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    this.placements = new Counter({ name: 'borealis_placements_total', help: 'Tasks placed on an agent', registers });
    this.unplaced = new Counter({ name: 'borealis_unplaced_total', help: 'Placement attempts that left a task pending, by reason code', labelNames: ['code'], registers });
    this.placementLatency = new Histogram({
      name: 'borealis_placement_latency_seconds',
      help: 'Time from a task asking for a placement to its assignment',
      buckets: PLACEMENT_BUCKETS,
      registers,
    });
    this.transitions = new Counter({ name: 'borealis_task_transitions_total', help: 'Task state transitions, by new state', labelNames: ['state'], registers });
    new Gauge({
      name: 'borealis_tasks',
      // Over every task held, not each instance's latest attempt: counting only those showed 0 lost
      // while the task listing held 5 lost attempts (Mesos counts terminal tasks it still knows too).
      help: 'Tasks the master holds (every retained attempt, ended ones included) by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = source.tasksByState();
        for (const s of TASK_STATES) this.set({ state: s }, counts[s] ?? 0);
      },
    });
    new Gauge({
      name: 'borealis_agents',
      help: 'Agents by state',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [s, n] of Object.entries(source.agentsByState())) this.set({ state: s }, n);
      },
    });
    new Gauge({
      name: 'borealis_jobs',
      help: 'Jobs by state',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [s, n] of Object.entries(source.jobsByState())) this.set({ state: s }, n);
      },
    });
  }
}
