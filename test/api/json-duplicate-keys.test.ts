/** A JSON body naming one member twice is refused like a YAML one (JSON.parse would keep the last silently). */
import { describe, expect, it } from 'vitest';
import { findDuplicateKey } from '../../src/api/json-duplicate-keys.js';
import { apiFixture } from './helpers.js';

const fx = apiFixture();

describe('findDuplicateKey', () => {
  it('names the first member given twice in one object, by path, and nothing else', () => {
    expect(findDuplicateKey('{"a":1,"b":2}')).toBeNull();
    expect(findDuplicateKey('{"a":1,"a":2}')).toBe('a');
    expect(findDuplicateKey('{"a":{"x":1},"b":{"x":2}}')).toBeNull();
    expect(findDuplicateKey('{"r":{"cpus":1,"mem":2,"cpus":3}}')).toBe('r.cpus');
    expect(findDuplicateKey('{"c":[{"v":1},{"v":2,"v":3}]}')).toBe('c[1].v');
    expect(findDuplicateKey('[{"a":1},{"a":2}]')).toBeNull();
    expect(findDuplicateKey('[[1,{"a":1,"a":1}]]')).toBe('[0][1].a');
    // Names compare decoded; strings that look like names inside values or arrays are not names.
    expect(findDuplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
    expect(findDuplicateKey('{"a":"a","b":["a","a"],"c":"\\"a\\":1"}')).toBeNull();
    expect(findDuplicateKey('{"a\\"b":1,"a\\"b":2}')).toBe('a"b');
    expect(findDuplicateKey('"plain"')).toBeNull();
  });
});

describe('POST /v1/jobs with a member given twice', () => {
  it('is refused (400 BRL_ERR_MALFORMED_BODY, naming it) and nothing is submitted', async () => {
    const { master, addr } = await fx.start();
    const body = '{"name":"web","type":"service","instances":3,"command":"true","resources":{"cpus":0.1,"mem":16},"instances":300}';
    const r = await fetch(`http://${addr}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ code: 'BRL_ERR_MALFORMED_BODY', problems: [{ path: 'instances', message: 'given twice' }] });
    expect(master.listJobs()).toEqual([]);
  });
});
