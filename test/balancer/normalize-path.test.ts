/**
 * Path normalisation: the function (RFC 3986 §6.2.2 plus merged slashes), route prefixes in the same form, then
 * through each front end: a request is routed by its normal path and the endpoint receives that same path.
 */
import { describe, expect, it } from 'vitest';
import { RouteTable } from '../../src/balancer/index.js';
import { normaliseTarget } from '../../src/balancer/normalize-path.js';
import { FRONT_ENDS, FakeMaster, balancerFixture } from './helpers.js';
import { exchange } from '../transport/exchange.js';

describe('normaliseTarget', () => {
  it('leaves a normal path as it is', () => {
    for (const t of ['/', '/api/x', '/api/x/', '/.well-known/acme', '/a/...', '/a/..b/.c', '/x?a=/../b//c&d=%zz', '/?', '*']) {
      expect(normaliseTarget(t), t).toBe(t);
    }
  });

  it.each([
    ['/a/../api/x', '/api/x'],
    ['/%61pi/x', '/api/x'],
    ['/%2e%2E/api/x', '/api/x'],
    ['/api/./x', '/api/x'],
    ['//api//x', '/api/x'],
    ['/../x', '/x'],
    ['/../../..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/.', '/'],
    ['//', '/'],
    ['/a//../x', '/a/x'],
    ['/%7euser/%7E', '/~user/~'],
    ['/a%2fb', '/a%2Fb'],
    ['/api%2F..%2Fadmin', '/api%2F..%2Fadmin'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a/../b?q=/../c&r=%61', '/b?q=/../c&r=%61'],
    ['/a/..?x', '/?x'],
  ])('%s → %s', (input, normal) => {
    expect(normaliseTarget(input)).toBe(normal);
    // A normal form is its own normal form.
    expect(normaliseTarget(normal)).toBe(normal);
  });

  it('is idempotent and leaves no dot segment, empty segment or encoded unreserved character', () => {
    const parts = ['a', '.', '..', '', '%2e', '%2E%2e', '%61', '%2f', '%7E', 'b.c'];
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % parts.length;
    for (let n = 0; n < 2000; n++) {
      let t = '';
      for (let k = 1 + (n % 6); k > 0; k--) t += `/${parts[next()]}`;
      const once = normaliseTarget(t);
      expect(normaliseTarget(once), t).toBe(once);
      const segments = once.split('/').slice(1);
      expect(segments.slice(0, -1).every((s) => s !== '' && s !== '.' && s !== '..'), t).toBe(true);
      expect(segments.at(-1) === '.' || segments.at(-1) === '..', t).toBe(false);
      for (const [, hex] of once.matchAll(/%(..)/g)) {
        expect(hex, t).toBe(hex.toUpperCase());
        expect(String.fromCharCode(parseInt(hex, 16)), t).not.toMatch(/[A-Za-z0-9._~-]/);
      }
    }
  });
});

describe('RouteTable with normal-form prefixes', () => {
  it('puts prefixes in the form paths are matched in', () => {
    const t = new RouteTable([
      { service: 'root' },
      { service: 'tilde', pathPrefix: '/%7euser/' },
      { service: 'v1', pathPrefix: '/api//v1' },
    ]);
    expect(t.match(undefined, normaliseTarget('/~user/x'))).toBe('tilde');
    expect(t.match(undefined, normaliseTarget('/%7Euser'))).toBe('tilde');
    expect(t.match(undefined, normaliseTarget('/api/v1/x'))).toBe('v1');
    expect(t.match(undefined, normaliseTarget('/api//v1'))).toBe('v1');
  });
});

/** The first line and the body of a one-response exchange. */
function parts(text: string): { status: string; body: string } {
  return { status: text.slice(0, text.indexOf('\r\n')), body: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

describe.each(FRONT_ENDS)('path normalisation through the %s front end', (front) => {
  const fx = balancerFixture();

  async function setup() {
    const api = await fx.backend('api');
    const web = await fx.backend('web');
    const master = new FakeMaster();
    const bal = await fx.balancer(front, { feed: { master } });
    master.service('api', { hosts: ['a.test'], pathPrefix: '/api' });
    master.service('web', { hosts: ['a.test'] });
    master.running('api', 'api.0.0', api.port);
    master.running('web', 'web.0.0', web.port);
    return { api, web, port: bal.address!.port };
  }
  const get = (port: number, target: string, method = 'GET') => exchange(port, `${method} ${target} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`, 5_000);

  it('routes by the normal path and forwards it, query untouched', async () => {
    const { api, web, port } = await setup();
    const cases: [string, string][] = [
      ['/a/../api/x', '/api/x'],
      ['/%61pi/x', '/api/x'],
      ['/%2e%2e/api/x?q=/../web', '/api/x?q=/../web'],
      ['//api//x/./y/%2f', '/api/x/y/%2F'],
      ['/../api', '/api'],
      ['/api/../x', '/x'],
      ['/../x', '/x'],
    ];
    for (const [target] of cases) {
      const r = await get(port, target);
      expect(parts(r.text).status, target).toBe('HTTP/1.1 200 OK');
    }
    const seen = [...api.received.map((r) => `api ${r.url}`), ...web.received.map((r) => `web ${r.url}`)];
    expect(seen.sort()).toEqual(cases.map(([, normal]) => `${normal.startsWith('/api') ? 'api' : 'web'} ${normal}`).sort());
  });

  it('refuses a malformed percent-encoding or a fragment in the path with 400, forwarding nothing', async () => {
    const { api, web, port } = await setup();
    for (const target of ['/%zz/../api', '/api%2', '/api/x#frag']) {
      const { status, body } = parts((await get(port, target)).text);
      expect(status, target).toBe('HTTP/1.1 400 Bad Request');
      expect(body, target).toMatch(/^400 Bad Request: (a malformed percent-encoding in the path|a fragment \(#\) in the request target)\n$/);
    }
    expect([...api.received, ...web.received]).toEqual([]);
  });

  it('refuses a target that is not a path (`*`, relative), forwarding nothing', async () => {
    const { api, web, port } = await setup();
    for (const [method, target] of [['OPTIONS', '*'], ['GET', 'api/x']]) {
      // uWS' parser takes both for an incomplete request line and never answers (front-uws.ts); nothing is sent.
      const r = front === 'uws' ? await exchange(port, `${method} ${target} HTTP/1.1\r\nHost: a.test\r\n\r\n`, 500) : await get(port, target, method);
      if (front === 'uws') expect(r.text, target).toBe('');
      else expect(parts(r.text).status, target).toBe('HTTP/1.1 400 Bad Request');
    }
    expect([...api.received, ...web.received]).toEqual([]);
  });
});
