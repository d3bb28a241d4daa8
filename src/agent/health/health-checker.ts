/**
 * Periodic HTTP health checking of one task, reporting transitions between unknown, healthy and unhealthy.
 * A task is healthy only once a check has passed: "not failing yet" is not healthy, so a load balancer never
 * routes to a task that has not answered once.
 */
import { ClosedError, InvalidArgumentError } from '../../api/errors.js';
import type { FieldProblem } from '../../api/errors.js';
import { TypedEvents } from '../executor/events.js';
import { probeHttp } from './http-probe.js';
import type { ProbeResult } from './http-probe.js';

export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy';

export interface HealthCheckOptions {
  port: number;
  /** Default 127.0.0.1: the task runs on this machine, and the check must not depend on external routing. */
  host?: string;
  path?: string;
  /** Pause between the end of one check and the start of the next. */
  intervalMs?: number;
  timeoutMs?: number;
  /** Failed checks in a row that make the task unhealthy. */
  consecutiveFailures?: number;
  /** Time after start() before the first check, for the task to boot. */
  gracePeriodMs?: number;
}

type FilledOptions = Required<HealthCheckOptions>;

/** Close to Aurora's defaults (`/health`, 15 s to boot, a check every 10 s): services are slow to boot, fast once up. */
const DEFAULTS = {
  host: '127.0.0.1',
  path: '/health',
  intervalMs: 10_000,
  timeoutMs: 2_000,
  /** One dropped check is noise (GC pause, brief overload); three in a row is a pattern. */
  consecutiveFailures: 3,
  gracePeriodMs: 15_000,
} as const;

export type HealthEvents = {
  /** Every completed check. */
  check: [result: ProbeResult];
  /** Only on transitions. */
  change: [status: HealthStatus, previous: HealthStatus, last: ProbeResult];
};

export class HttpHealthChecker {
  readonly options: Readonly<FilledOptions>;
  readonly #events = new TypedEvents<HealthEvents>();
  #status: HealthStatus = 'unknown';
  #failures = 0;
  #checks = 0;
  #started = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(opts: HealthCheckOptions) {
    this.options = checkOptions(opts);
  }

  get status(): HealthStatus {
    return this.#status;
  }

  /** Failed checks in a row right now. */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  get checks(): number {
    return this.#checks;
  }

  on<K extends keyof HealthEvents>(event: K, listener: (...args: HealthEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  start(): void {
    if (this.#stopped) throw new ClosedError('health checker');
    if (this.#started) throw new InvalidArgumentError('health checker already started');
    this.#started = true;
    this.#schedule(this.options.gracePeriodMs);
  }

  /** Stops checking and aborts a check in flight; resolves when no timer or socket is left. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#inFlight;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    // Checks run one after another, never overlapping, so a hung server costs at most one socket.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#inFlight = this.#check();
    }, delayMs);
    this.#timer.unref(); // the task, not its health check, keeps the agent alive
  }

  async #check(): Promise<void> {
    const o = this.options;
    const result = await probeHttp({ host: o.host, port: o.port, path: o.path, timeoutMs: o.timeoutMs }, this.#abort.signal);
    if (this.#stopped) return; // a check aborted by stop() says nothing about the task
    this.#checks++;
    this.#events.emit('check', result);
    if (result.ok) {
      this.#failures = 0;
      this.#transition('healthy', result);
    } else {
      this.#failures++;
      if (this.#failures >= o.consecutiveFailures) this.#transition('unhealthy', result);
    }
    this.#schedule(o.intervalMs);
  }

  #transition(next: HealthStatus, last: ProbeResult): void {
    const previous = this.#status;
    if (previous === next) return;
    this.#status = next;
    this.#events.emit('change', next, previous, last);
  }
}

function checkOptions(opts: HealthCheckOptions): FilledOptions {
  const o: FilledOptions = {
    port: opts.port,
    host: opts.host ?? DEFAULTS.host,
    path: opts.path ?? DEFAULTS.path,
    intervalMs: opts.intervalMs ?? DEFAULTS.intervalMs,
    timeoutMs: opts.timeoutMs ?? DEFAULTS.timeoutMs,
    consecutiveFailures: opts.consecutiveFailures ?? DEFAULTS.consecutiveFailures,
    gracePeriodMs: opts.gracePeriodMs ?? DEFAULTS.gracePeriodMs,
  };
  const problems: FieldProblem[] = [];
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) problems.push({ path: 'port', message: 'must be 1-65535' });
  if (typeof o.host !== 'string' || o.host === '') problems.push({ path: 'host', message: 'must be a host name or address' });
  if (typeof o.path !== 'string' || !o.path.startsWith('/')) problems.push({ path: 'path', message: 'must start with /' });
  for (const key of ['intervalMs', 'timeoutMs'] as const) {
    if (!Number.isFinite(o[key]) || o[key] < 1) problems.push({ path: key, message: 'must be a number of milliseconds >= 1' });
  }
  if (!Number.isFinite(o.gracePeriodMs) || o.gracePeriodMs < 0) problems.push({ path: 'gracePeriodMs', message: 'must be >= 0' });
  if (!Number.isInteger(o.consecutiveFailures) || o.consecutiveFailures < 1) {
    problems.push({ path: 'consecutiveFailures', message: 'must be a whole number >= 1' });
  }
  if (problems.length > 0) throw new InvalidArgumentError('invalid health check options', problems);
  return o;
}
