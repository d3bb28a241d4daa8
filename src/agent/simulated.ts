/**
 * Simulated agents: the real protocol over a real WebSocket (MasterConnection, the same as the real agent's), with
 * no child processes behind it. A launched task goes STARTING, then RUNNING at once (or after a delay), and then
 * runs until killed, or ends FINISHED / FAILED after a set time. They exist for benchmarks and large-cluster tests,
 * so hundreds must be cheap in one process: every heartbeat, reconnect delay and task timer of every simulated
 * agent shares one TimerQueue (one Node timer), offers are parsed once per distinct flag string, and nothing is
 * logged per task.
 */
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../api/errors.js';
import type { RegisterMsg, TaskInfoMsg, TaskStatusMsg, TaskUsageMsg } from '../proto/index.js';
import type { BackoffOptions } from './backoff.js';
import { MasterConnection, registerMessage } from './connection.js';
import type { ConnectionState } from './connection.js';
import { checkAgentId } from './isolation/limits.js';
import { parseOffer } from './offer.js';
import type { AgentOffer } from './offer.js';
import type { StatusRetryOptions } from './status-updates.js';
import { UNKNOWN_TASK_KILLED, makeStatus } from './task.js';
import type { StatusFields, TaskPhase } from './task.js';
import { sharedTimers } from './timers.js';
import type { Timer, TimerQueue } from './timers.js';

/** What a simulated task does once launched. */
export interface SimulatedBehavior {
  /** STARTING to RUNNING after this long; 0 (the default) reports RUNNING right behind STARTING. */
  startDelayMs?: number;
  /** Time spent RUNNING before the task ends by itself; undefined (the default): runs until killed. */
  runMs?: number;
  /** How it ends after runMs: 'finished' (exit 0, the default) or 'failed'. */
  outcome?: 'finished' | 'failed';
  /** Exit code of a 'failed' outcome; default 1. */
  exitCode?: number;
}

export interface SimulatedAgentOptions {
  master: string;
  agentId: string;
  /** Default: the agent id. */
  hostname?: string;
  resources: string;
  ports?: string;
  attributes?: string;
  advertiseIp?: string;
  reconnect?: BackoffOptions;
  statusRetry?: StatusRetryOptions;
  /** One behaviour for every task, or one chosen per task. */
  behavior?: SimulatedBehavior | ((task: TaskInfoMsg) => SimulatedBehavior);
  /** Default: silent (hundreds of agents). */
  logger?: (line: string) => void;
  /** Default: the process-wide shared queue. */
  timers?: TimerQueue;
}

interface SimTask {
  readonly info: TaskInfoMsg;
  phase: TaskPhase;
  last: TaskStatusMsg;
  timer: Timer | undefined;
}

const MIB = 1024 * 1024;

/** Offers by flag strings: a thousand agents of three sizes parse three offers. */
const offerCache = new Map<string, AgentOffer>();

function cachedOffer(resources: string, ports?: string, attributes?: string): AgentOffer {
  const key = `${resources}\0${ports ?? ''}\0${attributes ?? ''}`;
  let offer = offerCache.get(key);
  if (offer === undefined) {
    offer = parseOffer(resources, ports, attributes);
    offerCache.set(key, offer);
  }
  return offer;
}

const silent = (): void => undefined;

export class SimulatedAgent {
  readonly agentId: string;
  readonly hostname: string;
  readonly advertiseIp: string;
  readonly offer: AgentOffer;
  readonly #conn: MasterConnection;
  readonly #tasks = new Map<string, SimTask>();
  readonly #behavior: SimulatedBehavior | ((task: TaskInfoMsg) => SimulatedBehavior);
  readonly #timers: TimerQueue;
  #launched = 0;
  #stopped: Promise<void> | undefined;

  /** Starts connecting at once; see whenRegistered. */
  static start(opts: SimulatedAgentOptions): SimulatedAgent {
    const agent = new SimulatedAgent(opts);
    agent.#conn.start();
    return agent;
  }

  private constructor(opts: SimulatedAgentOptions) {
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('simulated agent options must be an object');
    this.agentId = checkAgentId(opts.agentId);
    this.hostname = opts.hostname ?? opts.agentId;
    this.advertiseIp = opts.advertiseIp ?? '127.0.0.1';
    this.offer = cachedOffer(opts.resources, opts.ports, opts.attributes);
    this.#behavior = opts.behavior ?? {};
    this.#timers = opts.timers ?? sharedTimers;
    this.#conn = new MasterConnection({
      master: opts.master,
      log: opts.logger ?? silent,
      timers: this.#timers,
      logAttempts: false,
      ...(opts.reconnect === undefined ? {} : { reconnect: opts.reconnect }),
      ...(opts.statusRetry === undefined ? {} : { statusRetry: opts.statusRetry }),
      handlers: {
        register: () => this.#registerMessage(),
        registered: (msg) => {
          for (const taskId of msg.killTasks) this.kill(taskId);
        },
        launch: (info) => this.#launch(info),
        kill: (taskId) => this.kill(taskId),
        usage: () => this.#usage(),
        drained: (taskId) => {
          const t = this.#tasks.get(taskId);
          if (t !== undefined && isTerminal(t.phase)) this.#tasks.delete(taskId);
        },
      },
    });
  }

  get state(): ConnectionState {
    return this.#conn.state;
  }

  get registrations(): number {
    return this.#conn.registrations;
  }

  /** Tasks launched since start (duplicates not counted). */
  get launched(): number {
    return this.#launched;
  }

  /** Tasks not yet ended. */
  get running(): number {
    let n = 0;
    for (const t of this.#tasks.values()) if (!isTerminal(t.phase)) n++;
    return n;
  }

  /** Status updates not yet acknowledged. */
  get unacknowledged(): number {
    return this.#conn.updates.pending;
  }

  whenRegistered(): Promise<void> {
    return this.#conn.whenRegistered();
  }

  /** The phase of a task this agent still knows. */
  taskPhase(taskId: string): TaskPhase | undefined {
    return this.#tasks.get(taskId)?.phase;
  }

  /** Kills a task as a KillTask would: KILLED at once. An unknown id is reported KILLED / unknown_task. */
  kill(taskId: string): void {
    const t = this.#tasks.get(taskId);
    if (t === undefined) {
      this.#send(taskId, UNKNOWN_TASK_KILLED);
      return;
    }
    if (isTerminal(t.phase)) return;
    this.#end(t, { state: 'killed', reason: 'killed' });
  }

  /**
   * Closes the connection (no reconnect). With `killTasks`, every task is first reported KILLED and the master gets
   * a bounded chance to acknowledge; without, the master simply loses the agent, as when its host dies.
   */
  stop(opts: { killTasks?: boolean } = {}): Promise<void> {
    this.#stopped ??= (async () => {
      for (const t of this.#tasks.values()) {
        t.timer?.cancel();
        t.timer = undefined;
        if (opts.killTasks && !isTerminal(t.phase)) this.#end(t, { state: 'killed', reason: 'killed' });
      }
      if (opts.killTasks) await this.#conn.flush(2_000);
      await this.#conn.close();
    })();
    return this.#stopped;
  }

  #launch(info: TaskInfoMsg): void {
    if (this.#tasks.has(info.taskId)) return; // idempotent, as the real agent
    if (this.#stopped !== undefined) return;
    this.#launched++;
    const behavior = typeof this.#behavior === 'function' ? this.#behavior(info) : this.#behavior;
    // STAGING until the first report (the same stand-in as the real agent's ExecutorTask.latest).
    const t: SimTask = { info, phase: 'starting', last: makeStatus(info.taskId, { state: 'staging' }, '', Date.now()), timer: undefined };
    this.#tasks.set(info.taskId, t);
    this.#report(t, { state: 'starting' });
    const delay = behavior.startDelayMs ?? 0;
    if (delay > 0) t.timer = this.#timers.after(delay, () => this.#running(t, behavior));
    else this.#running(t, behavior);
  }

  #running(t: SimTask, behavior: SimulatedBehavior): void {
    t.timer = undefined;
    if (t.phase !== 'starting') return;
    t.phase = 'running';
    // A health-checked task is RUNNING only once healthy, as on a real agent; a simulated one always is.
    this.#report(t, t.info.healthCheck === undefined ? { state: 'running' } : { state: 'running', healthy: true });
    if (behavior.runMs === undefined) return;
    t.timer = this.#timers.after(behavior.runMs, () => {
      t.timer = undefined;
      if (behavior.outcome === 'failed') {
        const exitCode = behavior.exitCode ?? 1;
        this.#end(t, { state: 'failed', reason: 'exited', exitCode, message: `exited with code ${exitCode}` });
      } else {
        this.#end(t, { state: 'finished', reason: 'exited', exitCode: 0 });
      }
    });
  }

  #end(t: SimTask, fields: StatusFields): void {
    t.timer?.cancel();
    t.timer = undefined;
    t.phase = fields.state as TaskPhase;
    this.#report(t, fields);
  }

  #report(t: SimTask, fields: StatusFields): void {
    t.last = this.#send(t.info.taskId, fields);
  }

  #send(taskId: string, fields: StatusFields): TaskStatusMsg {
    const status = makeStatus(taskId, fields, randomUUID(), Date.now());
    this.#conn.sendStatus(status);
    return status;
  }

  #registerMessage(): RegisterMsg {
    const tasks: TaskStatusMsg[] = [];
    for (const t of this.#tasks.values()) tasks.push(t.last);
    return registerMessage({
      agentId: this.agentId,
      hostname: this.hostname,
      advertiseIp: this.advertiseIp,
      offer: this.offer,
      isolation: 'simulated',
      tasks,
    });
  }

  /** A simulated task uses half of the memory it asked for, and no CPU time. */
  #usage(): TaskUsageMsg[] {
    const out: TaskUsageMsg[] = [];
    for (const t of this.#tasks.values()) {
      if (t.phase === 'running') out.push({ taskId: t.info.taskId, rssBytes: ((t.info.resources?.memMib ?? 0) * MIB) / 2 });
    }
    return out;
  }
}

function isTerminal(phase: TaskPhase): boolean {
  return phase === 'finished' || phase === 'failed' || phase === 'killed';
}

// A fleet -------------------------------------------------------------------------------------------------------

export interface SimulatedProfile {
  resources: string;
  ports?: string;
  /** Added to the zone and rack attributes. */
  attributes?: string;
}

/** Three sizes, as a real fleet mixes them, so that bin-packing and spread placement have something to choose. */
export const DEFAULT_SIM_PROFILES: readonly SimulatedProfile[] = [
  { resources: 'cpus=4,mem=8Gi,disk=50Gi,gpus=0', attributes: 'size=small' },
  { resources: 'cpus=8,mem=32Gi,disk=100Gi,gpus=0', attributes: 'size=medium' },
  { resources: 'cpus=16,mem=64Gi,disk=200Gi,gpus=2', attributes: 'size=large' },
];

export const DEFAULT_SIM_ZONES: readonly string[] = ['a', 'b', 'c'];

/** Racks per zone: enough for rack-spread constraints to matter, few enough that racks hold several agents. */
const RACKS_PER_ZONE = 8;

export interface SimulatedFleetOptions extends Omit<SimulatedAgentOptions, 'agentId' | 'hostname' | 'resources' | 'ports' | 'attributes'> {
  /** Agent ids are `<idPrefix>-<index>`; default `sim`. */
  idPrefix?: string;
  profiles?: readonly SimulatedProfile[];
  zones?: readonly string[];
  /** Resolve only once every agent is registered (default true). */
  wait?: boolean;
}

export interface SimulatedFleet {
  readonly agents: readonly SimulatedAgent[];
  stop(opts?: { killTasks?: boolean }): Promise<void>;
}

/**
 * Starts `n` simulated agents. Agent i is in zone `zones[i % zones.length]` and has profile
 * `profiles[floor(i / zones.length) % profiles.length]`, so every zone gets every size (cycling both by i alone
 * would pin each size to one zone when the counts match).
 */
export async function startSimulatedAgents(n: number, opts: SimulatedFleetOptions): Promise<SimulatedFleet> {
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`n ${n} must be a whole number >= 0`, [{ path: 'n', message: 'must be >= 0' }]);
  const { idPrefix = 'sim', profiles = DEFAULT_SIM_PROFILES, zones = DEFAULT_SIM_ZONES, wait = true, ...common } = opts;
  if (profiles.length === 0) throw new InvalidArgumentError('profiles must not be empty', [{ path: 'profiles', message: 'empty' }]);
  if (zones.length === 0) throw new InvalidArgumentError('zones must not be empty', [{ path: 'zones', message: 'empty' }]);
  const width = String(Math.max(0, n - 1)).length;
  const agents: SimulatedAgent[] = [];
  for (let i = 0; i < n; i++) {
    const zone = zones[i % zones.length]!;
    const profile = profiles[Math.floor(i / zones.length) % profiles.length]!;
    const rack = `${zone}-r${Math.floor(i / zones.length) % RACKS_PER_ZONE}`;
    const attributes = [`zone=${zone}`, `rack=${rack}`, profile.attributes].filter((a) => a !== undefined && a !== '').join(',');
    agents.push(
      SimulatedAgent.start({
        ...common,
        agentId: `${idPrefix}-${String(i).padStart(width, '0')}`,
        resources: profile.resources,
        ...(profile.ports === undefined ? {} : { ports: profile.ports }),
        attributes,
      }),
    );
  }
  const fleet: SimulatedFleet = {
    agents,
    stop: async (stopOpts = {}) => {
      await Promise.all(agents.map((a) => a.stop(stopOpts)));
    },
  };
  if (wait) {
    try {
      await Promise.all(agents.map((a) => a.whenRegistered()));
    } catch (err) {
      await fleet.stop();
      throw err;
    }
  }
  return fleet;
}
