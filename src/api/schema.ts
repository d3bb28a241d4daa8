/**
 * The job spec's shape as a JSON Schema (ajv, allErrors, additionalProperties: false everywhere), and the merge
 * of schema problems with the master's own semantic ones (quantities like "lots", regexes that do not compile,
 * a health check probing a port the job does not ask for), so one 400 lists every problem by field path.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { JOB_NAME_RE, MAX_INSTANCES, validateJobSpec } from '../master/index.js';
import { POLICY_NAMES } from '../placement/scoring/policy.js';
import { type FieldProblem, InvalidArgumentError, InvalidJobSpecError, isBorealisError } from './errors.js';
import type { JobSpec } from '../master/index.js';

/** Bounds on millisecond settings, as the master's: a day is already far past any sensible check or backoff. */
const MAX_MS = 24 * 60 * 60 * 1000;
const ms = (min: number): object => ({ type: 'integer', minimum: min, maximum: MAX_MS });
/** A quantity: a number in the field's unit (cores, MiB) or a string with a unit ("500m", "64Mi"); units are the master's to parse. */
const quantity = { type: ['number', 'string'], minimum: 0, minLength: 1 };
const count = { type: 'integer', minimum: 0 };

/** Constraint operators the placement compiler accepts (aliases included). */
export const CONSTRAINT_OPERATORS = ['=', '==', 'eq', '!=', 'ne', '~', '=~', 'regex', 'limit', 'distinct_hosts'] as const;

export const JOB_SPEC_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'instances', 'command', 'resources'],
  properties: {
    name: { type: 'string', pattern: JOB_NAME_RE.source },
    role: { type: 'string', minLength: 1 },
    type: { enum: ['service', 'batch'] },
    instances: { type: 'integer', minimum: 0, maximum: MAX_INSTANCES },
    command: { type: ['string', 'array'], minLength: 1, minItems: 1, items: { type: 'string' } },
    env: { type: 'object', additionalProperties: { type: 'string' } },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: { cpus: quantity, mem: quantity, disk: quantity, gpus: count, ports: count },
    },
    constraints: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['operator'],
        properties: {
          attribute: { type: 'string', minLength: 1 },
          operator: { enum: CONSTRAINT_OPERATORS },
          value: { type: ['string', 'integer'] },
        },
      },
    },
    priority: { type: 'integer', minimum: -1e9, maximum: 1e9 },
    placement: { enum: POLICY_NAMES },
    healthCheck: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: {
        path: { type: 'string', pattern: '^/' },
        portIndex: count,
        intervalMs: ms(1),
        timeoutMs: ms(1),
        consecutiveFailures: { type: 'integer', minimum: 1 },
        gracePeriodMs: ms(0),
      },
    },
    restartPolicy: {
      type: 'object',
      additionalProperties: false,
      properties: { maxRetries: { type: 'integer', minimum: 0, maximum: 1000 }, backoffMs: ms(0), maxBackoffMs: ms(0) },
    },
    killGraceMs: ms(0),
    http: {
      type: 'object',
      additionalProperties: false,
      properties: {
        hosts: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 253 } },
        pathPrefix: { type: 'string', pattern: '^/', maxLength: 1024 },
        portIndex: count,
        weight: { type: 'number', exclusiveMinimum: 0, maximum: 10_000 },
      },
    },
  },
} as const;

export const SCALE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['instances'],
  properties: { instances: { type: 'integer', minimum: 0, maximum: MAX_INSTANCES } },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const jobValidator: ValidateFunction = ajv.compile(JOB_SPEC_SCHEMA);
const scaleValidator: ValidateFunction = ajv.compile(SCALE_SCHEMA);

/**
 * Validates a submitted job spec completely: the schema, then the master's semantic rules over the same input.
 * Throws InvalidJobSpecError listing every problem (one per path: the schema's message wins where both speak).
 */
export function checkJobSpec(input: unknown): JobSpec {
  const problems = jobValidator(input) ? [] : toProblems(jobValidator.errors ?? []);
  try {
    // The master assumes nothing about the shape, so it is safe to run on input the schema refused.
    validateJobSpec(input);
  } catch (err) {
    if (!isBorealisError(err)) throw err;
    const seen = problems.map((p) => p.path);
    for (const p of err.problems.length > 0 ? err.problems : [{ path: '', message: err.message }]) {
      if (!seen.some((s) => covers(s, p.path))) problems.push(p);
    }
  }
  if (problems.length > 0) throw new InvalidJobSpecError(problems);
  return input as JobSpec;
}

/** `{instances}` for PATCH /v1/jobs/:name. */
export function checkScale(input: unknown): { instances: number } {
  if (scaleValidator(input)) return input as { instances: number };
  const problems = toProblems(scaleValidator.errors ?? []);
  throw new InvalidArgumentError(`invalid scale request: ${problems.map((p) => `${p.path || '(root)'}: ${p.message}`).join('; ')}`, problems);
}

/** A problem at `a` already explains one at `b` when b is a or inside it. */
function covers(a: string, b: string): boolean {
  return a === b || b.startsWith(`${a}.`) || b.startsWith(`${a}[`) || a === '';
}

/** ajv errors to field problems with the master's path style (`constraints[0].operator`), deduplicated. */
export function toProblems(errors: readonly ErrorObject[]): FieldProblem[] {
  const out: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    let path = pointerToPath(e.instancePath);
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      path = join(path, String((e.params as { additionalProperty: string }).additionalProperty));
      message = 'unknown field';
    } else if (e.keyword === 'required') {
      path = join(path, String((e.params as { missingProperty: string }).missingProperty));
      message = 'is required';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'type') {
      message = `must be ${String((e.params as { type: string | string[] }).type).split(',').join(' or ')}`;
    }
    const key = `${path}\0${message}`;
    if (seen.has(key)) continue;
    // One message per path (a wrong type makes the range checks moot).
    if (out.some((p) => p.path === path)) continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  let path = '';
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^\d+$/.test(seg) ? `${path}[${seg}]` : join(path, seg);
  }
  return path;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
