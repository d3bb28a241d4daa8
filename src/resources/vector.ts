import { BadResourcesError, type FieldProblem, isBorealisError } from '../api/errors.js';
import { parseCount, parseCpus, parseMebibytes } from './units.js';

/**
 * The scalar resource dimensions, in the order the table stores their columns.
 * Ports are not a scalar column: they are a per-node bitmap (see ports.ts), requested by count.
 */
export const Dim = { CPU: 0, MEM: 1, DISK: 2, GPU: 3 } as const;
export const DIMS = 4;
export const DIM_NAMES = ['cpus', 'mem', 'disk', 'gpus'] as const;

/** Resources in table units: millicores, MiB, MiB, whole gpus, and a number of ports. */
export interface ResourceVector {
  cpus: number;
  mem: number;
  disk: number;
  gpus: number;
  ports: number;
}

/** What a user writes: cores and human byte units are accepted everywhere. */
export interface ResourceInput {
  cpus?: number | string;
  mem?: number | string;
  disk?: number | string;
  gpus?: number | string;
  ports?: number | string;
}

const KNOWN = new Set(['cpus', 'mem', 'disk', 'gpus', 'ports']);
const FIELDS = ['cpus', 'mem', 'disk', 'gpus', 'ports'] as const;
const PARSERS: ((raw: unknown) => number)[] = [
  (raw) => parseCpus(raw),
  (raw) => parseMebibytes(raw, 'mem'),
  (raw) => parseMebibytes(raw, 'disk'),
  (raw) => parseCount(raw, 'gpus'),
  (raw) => parseCount(raw, 'ports'),
];

/**
 * Parses a task's resource request. Every problem is collected with its field path so the caller
 * gets the whole list at once. A request of nothing at all is refused: it would fit everywhere
 * and account for nothing.
 */
export function parseRequest(input: unknown, path = 'resources'): ResourceVector {
  const problems: FieldProblem[] = [];
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new BadResourcesError(`${path} must be an object`, [{ path, message: 'must be an object' }]);
  }
  const obj = input as Record<string, unknown>;
  for (const key in obj) {
    if (!KNOWN.has(key)) problems.push({ path: `${path}.${key}`, message: 'unknown resource' });
  }
  const out: ResourceVector = { cpus: 0, mem: 0, disk: 0, gpus: 0, ports: 0 };
  // Plain numbers (what programs send) skip the string parser; anything else goes through it.
  for (let k = 0; k < FIELDS.length; k++) {
    const key = FIELDS[k]!;
    const raw = obj[key];
    if (raw === undefined) continue;
    try {
      out[key] = PARSERS[k]!(raw);
    } catch (err) {
      if (!isBorealisError(err)) throw err;
      problems.push({ path: `${path}.${key}`, message: err.message });
    }
  }
  if (problems.length === 0 && out.cpus === 0 && out.mem === 0 && out.disk === 0 && out.gpus === 0 && out.ports === 0) {
    problems.push({ path, message: 'requests no resources (at least one of cpus, mem, disk, gpus, ports must be > 0)' });
  }
  if (problems.length > 0) {
    throw new BadResourcesError(
      `invalid resources: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      problems,
    );
  }
  return out;
}

/** `cpus=4,mem=8Gi,disk=20Gi,gpus=0` (the agent's --resources flag, ports handled separately). */
export function parseResourceList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new BadResourcesError(`resource ${JSON.stringify(trimmed)} is not name=value`);
    out[trimmed.slice(0, eq).trim()] = trimmed.slice(eq + 1).trim();
  }
  return out;
}
