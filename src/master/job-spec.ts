import { type FieldProblem, InvalidJobSpecError, isBorealisError } from '../api/errors.js';
import { validateConstraints } from '../placement/constraints/compile.js';
import { POLICY_NAMES } from '../placement/scoring/policy.js';
import { type ResourceVector, parseRequest } from '../resources/vector.js';
import type { JobSpec } from './types.js';

/** Aurora's job-name rule, tightened to DNS-friendly lowercase: names end up in task ids and hostnames. */
export const JOB_NAME_RE = /^[a-z0-9][a-z0-9-_.]{0,62}$/;
/** Past this a job is better split: one submit writes every instance to the journal in one record. */
export const MAX_INSTANCES = 100_000;
/** Bounds on millisecond settings: a day is already far past any sensible check or backoff. */
const MAX_MS = 24 * 60 * 60 * 1000;

const TOP_FIELDS = new Set([
  'name',
  'role',
  'type',
  'instances',
  'command',
  'env',
  'resources',
  'constraints',
  'priority',
  'placement',
  'healthCheck',
  'restartPolicy',
  'killGraceMs',
  'http',
]);
const HEALTH_FIELDS = new Set(['path', 'portIndex', 'intervalMs', 'timeoutMs', 'consecutiveFailures', 'gracePeriodMs']);
const RESTART_FIELDS = new Set(['maxRetries', 'backoffMs', 'maxBackoffMs']);
const HTTP_FIELDS = new Set(['hosts', 'pathPrefix', 'portIndex', 'weight']);
/** A DNS name, optionally with a leading `*.` wildcard label; the balancer matches Host case-insensitively. */
const HOST_RE = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export interface ValidatedJob {
  /** A deep copy of the spec: later changes to the caller's object do not reach the master. */
  spec: JobSpec;
  resources: ResourceVector;
}

/**
 * Semantic validation of a job spec. The API layer checks the schema first; this is the master's
 * own line of defence (it is also called directly), so it assumes nothing about the input's shape.
 * Every problem is collected, by field path, before anything is refused.
 */
export function validateJobSpec(input: unknown): ValidatedJob {
  const problems: FieldProblem[] = [];
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidJobSpecError([{ path: '', message: 'must be an object' }]);
  }
  const s = input as Record<string, unknown>;
  for (const k of Object.keys(s)) if (!TOP_FIELDS.has(k)) problems.push({ path: k, message: 'unknown field' });

  if (typeof s.name !== 'string' || !JOB_NAME_RE.test(s.name)) {
    problems.push({ path: 'name', message: `must match ${JOB_NAME_RE.source} (lowercase letters, digits, - _ ., at most 63)` });
  }
  if (s.role !== undefined && (typeof s.role !== 'string' || s.role === '')) problems.push({ path: 'role', message: 'must be a non-empty string' });
  if (s.type !== 'service' && s.type !== 'batch') problems.push({ path: 'type', message: 'must be "service" or "batch"' });
  if (typeof s.instances !== 'number' || !Number.isInteger(s.instances) || s.instances < 0 || s.instances > MAX_INSTANCES) {
    problems.push({ path: 'instances', message: `must be a whole number in 0..${MAX_INSTANCES}` });
  }
  checkCommand(s.command, problems);
  if (s.env !== undefined) {
    if (s.env === null || typeof s.env !== 'object' || Array.isArray(s.env)) problems.push({ path: 'env', message: 'must be an object of strings' });
    else for (const [k, v] of Object.entries(s.env)) if (typeof v !== 'string') problems.push({ path: `env.${k}`, message: 'must be a string' });
  }

  let resources: ResourceVector | undefined;
  try {
    resources = parseRequest(s.resources, 'resources');
  } catch (err) {
    if (!isBorealisError(err)) throw err;
    problems.push(...(err.problems.length > 0 ? err.problems : [{ path: 'resources', message: err.message }]));
  }
  try {
    validateConstraints(s.constraints, 'constraints');
  } catch (err) {
    if (!isBorealisError(err)) throw err;
    problems.push(...(err.problems.length > 0 ? err.problems : [{ path: 'constraints', message: err.message }]));
  }
  if (s.priority !== undefined && (typeof s.priority !== 'number' || !Number.isInteger(s.priority) || Math.abs(s.priority) > 1e9)) {
    problems.push({ path: 'priority', message: 'must be a whole number in -1e9..1e9' });
  }
  if (s.placement !== undefined && !(POLICY_NAMES as readonly unknown[]).includes(s.placement)) {
    problems.push({ path: 'placement', message: `must be one of ${POLICY_NAMES.join(', ')}` });
  }
  checkHealth(s.healthCheck, resources?.ports, problems);
  checkRestart(s.restartPolicy, problems);
  checkHttp(s.http, s.type, resources?.ports, problems);
  if (s.killGraceMs !== undefined) checkMs(s.killGraceMs, 'killGraceMs', 0, problems);

  if (problems.length > 0) throw new InvalidJobSpecError(problems);
  return { spec: structuredClone(s) as unknown as JobSpec, resources: resources! };
}

function checkCommand(c: unknown, problems: FieldProblem[]): void {
  if (typeof c === 'string') {
    if (c.trim() === '') problems.push({ path: 'command', message: 'must not be empty' });
  } else if (Array.isArray(c)) {
    if (c.length === 0) problems.push({ path: 'command', message: 'argv must have at least the program' });
    c.forEach((a, i) => {
      if (typeof a !== 'string') problems.push({ path: `command[${i}]`, message: 'must be a string' });
    });
  } else {
    problems.push({ path: 'command', message: 'must be a shell string or an argv array of strings' });
  }
}

function checkMs(v: unknown, path: string, min: number, problems: FieldProblem[]): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > MAX_MS) {
    problems.push({ path, message: `must be a whole number of milliseconds in ${min}..${MAX_MS}` });
  }
}

function checkObject(v: unknown, path: string, known: Set<string>, problems: FieldProblem[]): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    problems.push({ path, message: 'must be an object' });
    return false;
  }
  for (const k of Object.keys(v)) if (!known.has(k)) problems.push({ path: `${path}.${k}`, message: 'unknown field' });
  return true;
}

function checkHealth(h: unknown, ports: number | undefined, problems: FieldProblem[]): void {
  if (h === undefined || !checkObject(h, 'healthCheck', HEALTH_FIELDS, problems)) return;
  if (typeof h.path !== 'string' || !h.path.startsWith('/')) problems.push({ path: 'healthCheck.path', message: 'must be a path starting with /' });
  if (h.portIndex !== undefined && (typeof h.portIndex !== 'number' || !Number.isInteger(h.portIndex) || h.portIndex < 0)) {
    problems.push({ path: 'healthCheck.portIndex', message: 'must be a whole number >= 0' });
  }
  // An HTTP check needs a port to probe: the job must ask for more ports than the index.
  const index = typeof h.portIndex === 'number' ? h.portIndex : 0;
  if (ports !== undefined && index >= ports) {
    problems.push({ path: 'healthCheck.portIndex', message: `probes port ${index} but resources.ports asks for ${ports}` });
  }
  for (const k of ['intervalMs', 'timeoutMs', 'gracePeriodMs'] as const) if (h[k] !== undefined) checkMs(h[k], `healthCheck.${k}`, k === 'gracePeriodMs' ? 0 : 1, problems);
  if (h.consecutiveFailures !== undefined && (typeof h.consecutiveFailures !== 'number' || !Number.isInteger(h.consecutiveFailures) || h.consecutiveFailures < 1)) {
    problems.push({ path: 'healthCheck.consecutiveFailures', message: 'must be a whole number >= 1' });
  }
}

function checkHttp(h: unknown, type: unknown, ports: number | undefined, problems: FieldProblem[]): void {
  if (h === undefined || !checkObject(h, 'http', HTTP_FIELDS, problems)) return;
  if (type === 'batch') problems.push({ path: 'http', message: 'only services take traffic through the balancer' });
  if (h.hosts !== undefined) {
    if (!Array.isArray(h.hosts) || h.hosts.length === 0 || h.hosts.length > 64) problems.push({ path: 'http.hosts', message: 'must be a list of 1..64 host names' });
    else h.hosts.forEach((v, i) => {
      if (typeof v !== 'string' || v.length > 253 || !HOST_RE.test(v)) problems.push({ path: `http.hosts[${i}]`, message: 'must be a DNS name (optionally *.suffix)' });
    });
  }
  if (h.pathPrefix !== undefined && (typeof h.pathPrefix !== 'string' || !h.pathPrefix.startsWith('/') || h.pathPrefix.length > 1024 || /[?#\s]/.test(h.pathPrefix))) {
    problems.push({ path: 'http.pathPrefix', message: 'must be a path starting with / (no query, fragment or spaces)' });
  }
  const index = h.portIndex ?? 0;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0) problems.push({ path: 'http.portIndex', message: 'must be a whole number >= 0' });
  else if (ports !== undefined && index >= ports) problems.push({ path: 'http.portIndex', message: `routes to port ${index} but resources.ports asks for ${ports}` });
  if (h.weight !== undefined && (typeof h.weight !== 'number' || !(h.weight > 0) || h.weight > 10_000)) problems.push({ path: 'http.weight', message: 'must be a number in (0, 10000]' });
}

function checkRestart(r: unknown, problems: FieldProblem[]): void {
  if (r === undefined || !checkObject(r, 'restartPolicy', RESTART_FIELDS, problems)) return;
  if (r.maxRetries !== undefined && (typeof r.maxRetries !== 'number' || !Number.isInteger(r.maxRetries) || r.maxRetries < 0 || r.maxRetries > 1000)) {
    problems.push({ path: 'restartPolicy.maxRetries', message: 'must be a whole number in 0..1000' });
  }
  if (r.backoffMs !== undefined) checkMs(r.backoffMs, 'restartPolicy.backoffMs', 0, problems);
  if (r.maxBackoffMs !== undefined) checkMs(r.maxBackoffMs, 'restartPolicy.maxBackoffMs', 0, problems);
  if (typeof r.backoffMs === 'number' && typeof r.maxBackoffMs === 'number' && r.maxBackoffMs < r.backoffMs) {
    problems.push({ path: 'restartPolicy.maxBackoffMs', message: 'must be >= restartPolicy.backoffMs' });
  }
}
