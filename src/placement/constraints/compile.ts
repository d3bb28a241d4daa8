import { BadConstraintError, type FieldProblem } from '../../api/errors.js';
import type { AttributeInterner } from '../../resources/attributes.js';
import { type CompiledConstraints, OP_STRIDE, Op } from './compiled.js';
import { REASON_SLOTS, Reason } from '../status.js';

/** A placement constraint as a job spec writes it. */
export interface ConstraintSpec {
  attribute?: string;
  /** `=` `!=` `~` (full-match regex) `limit` `distinct_hosts`; `==` `eq` `ne` `regex` `=~` are accepted aliases. */
  operator: string;
  /** Value for = != ~; N for limit. */
  value?: string | number;
}

const OPERATORS: Record<string, number> = {
  '=': Op.EQ,
  '==': Op.EQ,
  eq: Op.EQ,
  '!=': Op.NE,
  ne: Op.NE,
  '~': Op.IN_SET,
  '=~': Op.IN_SET,
  regex: Op.IN_SET,
  limit: Op.LIMIT,
  distinct_hosts: Op.DISTINCT_HOSTS,
};
const KNOWN_FIELDS = new Set(['attribute', 'operator', 'value']);

interface Entry {
  compiled: CompiledConstraints;
  normal: NormalConstraint[];
}

/** Validated, normalised constraint; the cache key is built from these. */
interface NormalConstraint {
  op: number;
  attribute: string;
  value: string;
  limit: number;
  regex: RegExp | null;
}

/**
 * Constraints a task may carry: a placement outcome names the constraint that blocked it by index in one of
 * REASON_SLOTS - Reason.CONSTRAINT_BASE reason slots (status.ts), so more could not be told apart. Real jobs
 * carry a handful (Aurora's and Nomad's examples: a zone pin, a limit, distinct hosts).
 */
export const MAX_CONSTRAINTS = REASON_SLOTS - Reason.CONSTRAINT_BASE;

/** Validates a constraint list completely, listing every problem by path. Nothing is compiled if any is wrong. */
export function validateConstraints(specs: unknown, path = 'constraints'): NormalConstraint[] {
  if (specs === undefined || specs === null) return [];
  if (!Array.isArray(specs)) throw new BadConstraintError(`${path} must be an array`, [{ path, message: 'must be an array' }]);
  if (specs.length > MAX_CONSTRAINTS) {
    const message = `at most ${MAX_CONSTRAINTS} constraints, got ${specs.length}`;
    throw new BadConstraintError(`${path}: ${message}`, [{ path, message }]);
  }
  const problems: FieldProblem[] = [];
  const out: NormalConstraint[] = [];
  specs.forEach((raw: unknown, i) => {
    const p = `${path}[${i}]`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push({ path: p, message: 'must be an object' });
      return;
    }
    const c = raw as Record<string, unknown>;
    for (const k of Object.keys(c)) if (!KNOWN_FIELDS.has(k)) problems.push({ path: `${p}.${k}`, message: 'unknown field' });
    const op = typeof c.operator === 'string' ? OPERATORS[c.operator] : undefined;
    if (op === undefined) {
      problems.push({
        path: `${p}.operator`,
        message: `unknown operator ${JSON.stringify(c.operator)} (use =, !=, ~, limit, distinct_hosts)`,
      });
      return;
    }
    const attribute = typeof c.attribute === 'string' ? c.attribute : '';
    if (op !== Op.DISTINCT_HOSTS && attribute === '') {
      problems.push({ path: `${p}.attribute`, message: 'is required' });
      return;
    }
    const n: NormalConstraint = { op, attribute, value: '', limit: 0, regex: null };
    if (op === Op.EQ || op === Op.NE || op === Op.IN_SET) {
      if (typeof c.value !== 'string') {
        problems.push({ path: `${p}.value`, message: 'must be a string' });
        return;
      }
      n.value = c.value;
      if (op === Op.IN_SET) {
        try {
          // Validate the pattern alone first: wrapped, `a)|(?:x` would parse and escape the anchors.
          new RegExp(c.value);
          // Full match, as Marathon's LIKE: `a10.*` should not match `xa100`.
          n.regex = new RegExp(`^(?:${c.value})$`);
        } catch (err) {
          problems.push({ path: `${p}.value`, message: `bad regex: ${(err as Error).message}` });
          return;
        }
      }
    } else if (op === Op.LIMIT) {
      const lim = typeof c.value === 'string' && c.value.trim() !== '' ? Number(c.value) : c.value;
      if (typeof lim !== 'number' || !Number.isInteger(lim) || lim < 1) {
        problems.push({ path: `${p}.value`, message: 'limit must be a whole number >= 1' });
        return;
      }
      n.limit = lim;
    } else if (c.value !== undefined) {
      problems.push({ path: `${p}.value`, message: 'distinct_hosts takes no value' });
      return;
    }
    out.push(n);
  });
  if (problems.length > 0) {
    throw new BadConstraintError(`invalid constraints: ${problems.map((x) => `${x.path}: ${x.message}`).join('; ')}`, problems);
  }
  return out;
}

function describe(c: NormalConstraint): string {
  switch (c.op) {
    case Op.EQ:
      return `${c.attribute}=${c.value}`;
    case Op.NE:
      return `${c.attribute}!=${c.value}`;
    case Op.IN_SET:
      return `${c.attribute}~${c.value}`;
    case Op.LIMIT:
      return `${c.attribute} limit ${c.limit}`;
    default:
      return 'distinct_hosts';
  }
}

/**
 * Compiles constraint lists against the attribute interner and caches them by content. A set is
 * recompiled when new attribute values appear (an `=` on a value no node had yet, or a regex, must
 * see the newcomer); its id stays the same, so workers re-cache by (id, generation).
 */
export class ConstraintCompiler {
  private readonly interner: AttributeInterner;
  private readonly byKey = new Map<string, Entry>();
  private readonly byId: Entry[] = [];

  constructor(interner: AttributeInterner) {
    this.interner = interner;
  }

  /** Returns the compiled set for a spec list, or null when there are no constraints. Throws BadConstraintError. */
  compile(specs: unknown, path = 'constraints'): CompiledConstraints | null {
    const normal = validateConstraints(specs, path);
    if (normal.length === 0) return null;
    const key = normal.map((c) => `${c.op}\u0001${c.attribute}\u0001${c.value}\u0001${c.limit}`).join('\u0002');
    const hit = this.byKey.get(key);
    if (hit) return this.refresh(hit);
    const entry: Entry = { compiled: this.build(this.byId.length, normal), normal };
    this.byKey.set(key, entry);
    this.byId.push(entry);
    return entry.compiled;
  }

  /** The current compiled form of a set by id (recompiled if attributes changed since). */
  get(id: number): CompiledConstraints | undefined {
    const entry = this.byId[id];
    return entry ? this.refresh(entry) : undefined;
  }

  private refresh(entry: Entry): CompiledConstraints {
    if (entry.compiled.generation !== this.interner.generation) entry.compiled = this.build(entry.compiled.id, entry.normal);
    return entry.compiled;
  }

  private build(id: number, normal: NormalConstraint[]): CompiledConstraints {
    const interner = this.interner;
    const program = new Int32Array(normal.length * OP_STRIDE);
    const matchSets: Uint8Array[] = [];
    let jobScoped = false;
    normal.forEach((c, i) => {
      const slot = c.op === Op.DISTINCT_HOSTS ? -1 : interner.slotOf(c.attribute);
      let arg = 0;
      if (c.op === Op.EQ || c.op === Op.NE) {
        // -1 can never equal a stored id (ids are >= 0), so `=` on an unknown value matches nothing.
        arg = slot < 0 ? -1 : interner.valueIdOf(slot, c.value) || -1;
      } else if (c.op === Op.IN_SET) {
        const set = new Uint8Array(interner.valueCount);
        if (slot >= 0) for (const [vid, name] of interner.valuesOf(slot)) if (c.regex!.test(name)) set[vid] = 1;
        arg = matchSets.length;
        matchSets.push(set);
      } else if (c.op === Op.LIMIT) {
        arg = c.limit;
        jobScoped = true;
      } else {
        jobScoped = true;
      }
      program[i * OP_STRIDE] = c.op;
      program[i * OP_STRIDE + 1] = slot;
      program[i * OP_STRIDE + 2] = arg;
    });
    return { id, generation: interner.generation, program, matchSets, jobScoped, text: normal.map(describe) };
  }
}
