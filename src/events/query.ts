import { InvalidArgumentError, type FieldProblem } from '../api/errors.js';
import { JOB_NAME_RE } from '../master/job-spec.js';
import type { ClusterEvent } from '../master/types.js';
import { EVENT_TYPES } from '../proto/events.js';

/** Which events a subscriber gets; an absent set lets everything through on that axis. */
export interface EventFilter {
  jobs?: ReadonlySet<string>;
  agents?: ReadonlySet<string>;
  types?: ReadonlySet<ClusterEvent['type']>;
}

/** A subscription request: where to start and what to pass. */
export interface StreamRequest {
  /** Resume after this seq; absent: live from the current seq. */
  since?: number;
  /** The epoch the `since` belongs to (from a hello/resync); a different one means a restarted master: resync. */
  epoch?: string;
  filter: EventFilter;
}

const KNOWN = new Set(['since', 'epoch', 'job', 'agent', 'type']);
/** A filter list past this is a mistake (or an attack on the per-event check), not a use. */
const MAX_FILTER_VALUES = 256;
const AGENT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const TYPE_SET = new Set<string>(EVENT_TYPES);

/**
 * `?since=SEQ&epoch=E&job=a,b&agent=x&type=task_state,task_placed` -> StreamRequest. Every value is checked and
 * an unknown parameter is refused too (a typo like `jobs=` would otherwise silently stream everything):
 * InvalidArgumentError (400 BRL_ERR_INVALID_ARGUMENT) naming each problem.
 */
export function parseStreamQuery(q: URLSearchParams): StreamRequest {
  const problems: FieldProblem[] = [];
  for (const k of new Set(q.keys())) {
    if (!KNOWN.has(k)) problems.push({ path: k, message: `unknown parameter (known: ${[...KNOWN].join(', ')})` });
    else if (q.getAll(k).length > 1) problems.push({ path: k, message: 'given more than once (use one comma-separated list)' });
  }
  const req: StreamRequest = { filter: {} };
  const since = q.get('since');
  if (since !== null) {
    const n = Number(since);
    if (!/^\d{1,16}$/.test(since) || !Number.isSafeInteger(n)) problems.push({ path: 'since', message: `must be a seq (a whole number >= 0), got ${JSON.stringify(since)}` });
    else req.since = n;
  }
  const epoch = q.get('epoch');
  if (epoch !== null) {
    if (!/^[0-9a-f-]{1,64}$/i.test(epoch)) problems.push({ path: 'epoch', message: `must be an epoch from a hello or resync message, got ${JSON.stringify(epoch)}` });
    else req.epoch = epoch;
  }
  const list = (key: string, ok: (v: string) => boolean, expect: string): Set<string> | undefined => {
    const raw = q.get(key);
    if (raw === null) return undefined;
    const values = raw.split(',').map((s) => s.trim());
    if (values.length > MAX_FILTER_VALUES) {
      problems.push({ path: key, message: `at most ${MAX_FILTER_VALUES} values` });
      return undefined;
    }
    const bad = values.filter((v) => !ok(v));
    if (bad.length > 0) problems.push({ path: key, message: `${expect}, got ${bad.map((v) => JSON.stringify(v)).join(', ')}` });
    return new Set(values);
  };
  const jobs = list('job', (v) => JOB_NAME_RE.test(v), 'must be job names');
  const agents = list('agent', (v) => AGENT_ID_RE.test(v), 'must be agent ids');
  const types = list('type', (v) => TYPE_SET.has(v), `must be event types (${EVENT_TYPES.join(', ')})`);
  if (problems.length > 0) {
    throw new InvalidArgumentError(`bad event stream query: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  if (jobs) req.filter.jobs = jobs;
  if (agents) req.filter.agents = agents;
  if (types) req.filter.types = types as Set<ClusterEvent['type']>;
  return req;
}

export function isUnfiltered(f: EventFilter): boolean {
  return f.jobs === undefined && f.agents === undefined && f.types === undefined;
}

/** Every given axis must match; an event without a job (or agent) fails a job (or agent) filter. */
export function matches(f: EventFilter, e: ClusterEvent): boolean {
  if (f.types !== undefined && !f.types.has(e.type)) return false;
  if (f.jobs !== undefined && (e.job === undefined || !f.jobs.has(e.job))) return false;
  if (f.agents !== undefined && (e.agentId === undefined || !f.agents.has(e.agentId))) return false;
  return true;
}
