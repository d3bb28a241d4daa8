import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/api/errors.js';
import { ConstraintCompiler, MAX_CONSTRAINTS, validateConstraints } from '../../src/placement/constraints/compile.js';
import { OP_STRIDE, Op } from '../../src/placement/constraints/compiled.js';
import { constraintsFit } from '../../src/placement/feasibility/constraints-fit.js';
import { Reason } from '../../src/placement/status.js';
import { cluster, spec, thrown } from './helpers.js';

const BAD = ErrorCodes.BAD_CONSTRAINT;

function gpuCluster() {
  return cluster([
    spec('a100', 8, 32, 1, { zone: 'a', gpu_model: 'a100' }),
    spec('xa100', 8, 32, 1, { zone: 'b', gpu_model: 'xa100' }),
    spec('a1000', 8, 32, 1, { zone: 'b', gpu_model: 'a1000' }),
    spec('h100', 8, 32, 1, { zone: 'c', gpu_model: 'h100' }),
    spec('plain', 8, 32, 0, { zone: 'a' }),
  ]);
}

describe('validateConstraints', () => {
  it('accepts nothing at all', () => {
    expect(validateConstraints(undefined)).toEqual([]);
    expect(validateConstraints(null)).toEqual([]);
    expect(validateConstraints([])).toEqual([]);
  });

  it('maps every operator and alias to its op', () => {
    const cases: [string, number][] = [
      ['=', Op.EQ],
      ['==', Op.EQ],
      ['eq', Op.EQ],
      ['!=', Op.NE],
      ['ne', Op.NE],
      ['~', Op.IN_SET],
      ['=~', Op.IN_SET],
      ['regex', Op.IN_SET],
    ];
    for (const [operator, op] of cases) {
      const [n] = validateConstraints([{ attribute: 'zone', operator, value: 'a' }]);
      expect(n!.op, operator).toBe(op);
    }
    expect(validateConstraints([{ attribute: 'zone', operator: 'limit', value: 2 }])[0]!.op).toBe(Op.LIMIT);
    expect(validateConstraints([{ operator: 'distinct_hosts' }])[0]!.op).toBe(Op.DISTINCT_HOSTS);
  });
});

describe('ConstraintCompiler: refusals', () => {
  const c = gpuCluster().compiler;
  const refuse = (specs: unknown, path?: string) => {
    const err = thrown(() => c.compile(specs, path));
    expect(err.code).toBe(BAD);
    expect(err.httpStatus).toBe(400);
    return err.problems.map((p) => p.path);
  };

  it('refuses an unknown operator, naming its path', () => {
    expect(refuse([{ attribute: 'zone', operator: 'like', value: 'a' }])).toEqual(['constraints[0].operator']);
    expect(refuse([{ attribute: 'zone', operator: 'LIMIT', value: 1 }])).toEqual(['constraints[0].operator']);
    expect(refuse([{ attribute: 'zone', operator: 5, value: 'a' }])).toEqual(['constraints[0].operator']);
    expect(refuse([{ attribute: 'zone', value: 'a' }])).toEqual(['constraints[0].operator']);
    expect(refuse([{ operator: '=', attribute: 'zone', value: 'a' }, { attribute: 'zone', operator: '<>', value: 'a' }], 'jobs[1].constraints')).toEqual([
      'jobs[1].constraints[1].operator',
    ]);
  });

  it('refuses more constraints than an outcome can name, and takes exactly that many', () => {
    const zonePin = { attribute: 'zone', operator: '=', value: 'a' };
    expect(MAX_CONSTRAINTS).toBe(48);
    expect(validateConstraints(Array.from({ length: MAX_CONSTRAINTS }, () => zonePin))).toHaveLength(MAX_CONSTRAINTS);
    const err = thrown(() => validateConstraints(Array.from({ length: MAX_CONSTRAINTS + 1 }, () => zonePin)));
    expect(err).toMatchObject({ code: BAD, problems: [{ path: 'constraints', message: 'at most 48 constraints, got 49' }] });
  });

  it('refuses a bad regex', () => {
    expect(refuse([{ attribute: 'gpu_model', operator: '~', value: '(' }])).toEqual(['constraints[0].value']);
    expect(refuse([{ attribute: 'gpu_model', operator: 'regex', value: '[a-' }])).toEqual(['constraints[0].value']);
  });

  // compile.ts wraps the value as `^(?:${value})$` and only then checks it, so a value with an unmatched
  // `)` is accepted and escapes the full-match anchors: 'a)|(?:x' becomes /^(?:a)|(?:x)$/, which
  // matches every value starting with 'a'.
  it('refuses a regex that is only valid once wrapped (unmatched parentheses)', () => {
    expect(refuse([{ attribute: 'gpu_model', operator: '~', value: 'a)|(?:x' }])).toEqual(['constraints[0].value']);
  });

  it('refuses a limit that is not a whole number >= 1', () => {
    for (const value of [0, -1, 1.5, '0', 'abc', '', '  ', null, undefined, true]) {
      expect(refuse([{ attribute: 'zone', operator: 'limit', value }]), String(value)).toEqual(['constraints[0].value']);
    }
  });

  it('accepts a limit given as a numeric string', () => {
    const cs = c.compile([{ attribute: 'zone', operator: 'limit', value: '2' }])!;
    expect(cs.program[2]).toBe(2);
  });

  it('refuses distinct_hosts with a value', () => {
    expect(refuse([{ operator: 'distinct_hosts', value: 'yes' }])).toEqual(['constraints[0].value']);
    expect(refuse([{ operator: 'distinct_hosts', value: 1 }])).toEqual(['constraints[0].value']);
  });

  it('refuses a missing or empty attribute where one is needed', () => {
    for (const operator of ['=', '!=', '~', 'limit']) {
      const value = operator === 'limit' ? 1 : 'a';
      expect(refuse([{ operator, value }]), operator).toEqual(['constraints[0].attribute']);
      expect(refuse([{ attribute: '', operator, value }]), operator).toEqual(['constraints[0].attribute']);
      expect(refuse([{ attribute: 3, operator, value }]), operator).toEqual(['constraints[0].attribute']);
    }
  });

  it('refuses a non-string value for =, != and ~', () => {
    for (const operator of ['=', '!=', '~']) {
      expect(refuse([{ attribute: 'zone', operator, value: 5 }]), operator).toEqual(['constraints[0].value']);
      expect(refuse([{ attribute: 'zone', operator }]), operator).toEqual(['constraints[0].value']);
    }
  });

  it('refuses unknown fields', () => {
    expect(refuse([{ attribute: 'zone', operator: '=', value: 'a', weight: 50 }])).toEqual(['constraints[0].weight']);
  });

  it('refuses a non-array and non-object entries', () => {
    expect(refuse({ attribute: 'zone', operator: '=', value: 'a' })).toEqual(['constraints']);
    expect(refuse(['zone=a'])).toEqual(['constraints[0]']);
    expect(refuse([null])).toEqual(['constraints[0]']);
    expect(refuse([[]])).toEqual(['constraints[0]']);
  });

  it('lists every problem at once and compiles nothing', () => {
    const c2 = gpuCluster().compiler;
    const err = thrown(() =>
      c2.compile([
        { attribute: 'zone', operator: '=', value: 'a' },
        { attribute: 'zone', operator: 'nope', value: 'a' },
        { operator: '=', value: 'a' },
        { attribute: 'gpu_model', operator: '~', value: '(' },
        { attribute: 'zone', operator: 'limit', value: 0, extra: 1 },
      ]),
    );
    expect(err.code).toBe(BAD);
    expect(err.problems.map((p) => p.path).sort()).toEqual(
      ['constraints[1].operator', 'constraints[2].attribute', 'constraints[3].value', 'constraints[4].extra', 'constraints[4].value'].sort(),
    );
    // Nothing was cached: the first good set gets the first id.
    expect(c2.compile([{ attribute: 'zone', operator: '=', value: 'a' }])!.id).toBe(0);
    expect(c2.get(1)).toBeUndefined();
  });
});

describe('ConstraintCompiler: compiling', () => {
  it('returns null when there are no constraints', () => {
    const { compiler } = gpuCluster();
    expect(compiler.compile(undefined)).toBeNull();
    expect(compiler.compile([])).toBeNull();
  });

  it('compiles each operator to an (op, slot, arg) triple', () => {
    const { compiler, t } = gpuCluster();
    const zone = t.interner.slotOf('zone');
    const cs = compiler.compile([
      { attribute: 'zone', operator: '=', value: 'a' },
      { attribute: 'zone', operator: '!=', value: 'b' },
      { attribute: 'gpu_model', operator: '~', value: 'a.*' },
      { attribute: 'zone', operator: 'limit', value: 3 },
      { operator: 'distinct_hosts' },
    ])!;
    const p = cs.program;
    expect(p.length).toBe(5 * OP_STRIDE);
    expect([...p.subarray(0, 3)]).toEqual([Op.EQ, zone, t.interner.valueIdOf(zone, 'a')]);
    expect([...p.subarray(3, 6)]).toEqual([Op.NE, zone, t.interner.valueIdOf(zone, 'b')]);
    expect(p[6]).toBe(Op.IN_SET);
    expect(p[7]).toBe(t.interner.slotOf('gpu_model'));
    expect(cs.matchSets[p[8]!]).toBeInstanceOf(Uint8Array);
    expect([...p.subarray(9, 12)]).toEqual([Op.LIMIT, zone, 3]);
    expect(p[12]).toBe(Op.DISTINCT_HOSTS);
    expect(cs.jobScoped).toBe(true);
    expect(cs.text).toHaveLength(5);
    expect(cs.text[0]).toContain('zone');
    expect(cs.generation).toBe(t.interner.generation);
  });

  it('marks only sets with limit or distinct_hosts as job-scoped', () => {
    const { compiler } = gpuCluster();
    expect(compiler.compile([{ attribute: 'zone', operator: '=', value: 'a' }])!.jobScoped).toBe(false);
    expect(compiler.compile([{ attribute: 'zone', operator: '~', value: '.*' }])!.jobScoped).toBe(false);
    expect(compiler.compile([{ attribute: 'zone', operator: 'limit', value: 1 }])!.jobScoped).toBe(true);
    expect(compiler.compile([{ operator: 'distinct_hosts' }])!.jobScoped).toBe(true);
  });

  it('caches by content: identical specs (and aliases) share an id', () => {
    const { compiler } = gpuCluster();
    const a = compiler.compile([{ attribute: 'zone', operator: '=', value: 'a' }])!;
    const b = compiler.compile([{ attribute: 'zone', operator: '=', value: 'a' }])!;
    const alias = compiler.compile([{ operator: 'eq', value: 'a', attribute: 'zone' }])!;
    const other = compiler.compile([{ attribute: 'zone', operator: '=', value: 'b' }])!;
    const two = compiler.compile([
      { attribute: 'zone', operator: '=', value: 'a' },
      { operator: 'distinct_hosts' },
    ])!;
    expect(b.id).toBe(a.id);
    expect(b).toBe(a);
    expect(alias.id).toBe(a.id);
    expect(other.id).not.toBe(a.id);
    expect(two.id).not.toBe(a.id);
    expect(compiler.get(a.id)).toBe(a);
    expect(compiler.get(other.id)).toBe(other);
    expect(compiler.get(999)).toBeUndefined();
    // A limit of 2 is not a limit of 3.
    const l2 = compiler.compile([{ attribute: 'zone', operator: 'limit', value: 2 }])!;
    const l3 = compiler.compile([{ attribute: 'zone', operator: 'limit', value: 3 }])!;
    expect(l2.id).not.toBe(l3.id);
    expect(compiler.compile([{ attribute: 'zone', operator: 'limit', value: '2' }])!.id).toBe(l2.id);
  });

  it('matches nothing with = on a value no node has, and matches a newcomer after recompilation', () => {
    const c = gpuCluster();
    const cs = c.compiler.compile([{ attribute: 'zone', operator: '=', value: 'eu-3' }])!;
    for (const id of Object.keys(c.row)) expect(constraintsFit(c.v, c.row[id]!, cs, null), id).toBe(Reason.CONSTRAINT_BASE);
    const row = c.t.addNode(spec('newcomer', 4, 8, 0, { zone: 'eu-3' }));
    const fresh = c.compiler.get(cs.id)!;
    expect(fresh.id).toBe(cs.id);
    expect(fresh.generation).toBe(c.t.interner.generation);
    expect(constraintsFit(c.v, row, fresh, null)).toBe(Reason.NONE);
    expect(constraintsFit(c.v, c.row.a100!, fresh, null)).toBe(Reason.CONSTRAINT_BASE);
    // compile() of the same spec also hands back the recompiled set.
    expect(c.compiler.compile([{ attribute: 'zone', operator: '=', value: 'eu-3' }])).toBe(fresh);
  });

  it('matches nothing with = on a key no node has, until one joins', () => {
    const c = gpuCluster();
    const cs = c.compiler.compile([{ attribute: 'rack', operator: '=', value: 'r9' }])!;
    expect(cs.program[1]).toBe(-1);
    expect(constraintsFit(c.v, c.row.plain!, cs, null)).toBe(Reason.CONSTRAINT_BASE);
    const row = c.t.addNode(spec('racked', 4, 8, 0, { rack: 'r9' }));
    expect(constraintsFit(c.v, row, c.compiler.get(cs.id)!, null)).toBe(Reason.NONE);
  });

  it('recompiles a regex set when new values appear', () => {
    const c = gpuCluster();
    const cs = c.compiler.compile([{ attribute: 'gpu_model', operator: '~', value: 'b200|h100' }])!;
    const row = c.t.addNode(spec('b200', 8, 32, 1, { gpu_model: 'b200' }));
    expect(constraintsFit(c.v, row, c.compiler.get(cs.id)!, null)).toBe(Reason.NONE);
    expect(constraintsFit(c.v, c.row.h100!, c.compiler.get(cs.id)!, null)).toBe(Reason.NONE);
    expect(constraintsFit(c.v, c.row.a100!, c.compiler.get(cs.id)!, null)).toBe(Reason.CONSTRAINT_BASE);
  });

  it('treats a regex as a full match', () => {
    const c = gpuCluster();
    const fits = (value: string): string[] => {
      const cs = c.compiler.compile([{ attribute: 'gpu_model', operator: '~', value }])!;
      return Object.keys(c.row).filter((id) => constraintsFit(c.v, c.row[id]!, cs, null) === Reason.NONE);
    };
    expect(fits('a10.*')).toEqual(['a100', 'a1000']);
    expect(fits('a100')).toEqual(['a100']);
    expect(fits('a100|h100')).toEqual(['a100', 'h100']);
    expect(fits('.*a100')).toEqual(['a100', 'xa100']);
    expect(fits('.*')).toEqual(['a100', 'xa100', 'a1000', 'h100']); // 'plain' has no gpu_model
  });

  it('matches a regex only against values of its own attribute', () => {
    const c = cluster([spec('r', 4, 8, 0, { rack: 'a' }), spec('z', 4, 8, 0, { zone: 'a' })]);
    const cs = c.compiler.compile([{ attribute: 'zone', operator: '~', value: 'a' }])!;
    expect(constraintsFit(c.v, c.row.r!, cs, null)).toBe(Reason.CONSTRAINT_BASE);
    expect(constraintsFit(c.v, c.row.z!, cs, null)).toBe(Reason.NONE);
  });
});
