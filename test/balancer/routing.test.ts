/** Routing by host and path prefix: the table itself, then through each front end (with the 404 body). */
import { describe, expect, it } from 'vitest';
import { RouteTable } from '../../src/balancer/index.js';
import { normaliseHost } from '../../src/balancer/routes.js';
import { FRONT_ENDS, FakeMaster, balancerFixture, send } from './helpers.js';

describe('RouteTable', () => {
  const table = new RouteTable([
    { service: 'any-root' },
    { service: 'any-api', pathPrefix: '/api/' },
    { service: 'any-api-v2', pathPrefix: '/api/v2' },
    { service: 'shop', hosts: ['Shop.Example.com'], pathPrefix: '/' },
    { service: 'shop-admin', hosts: ['shop.example.com'], pathPrefix: '/admin' },
    { service: 'wild', hosts: ['*.example.com'], pathPrefix: '/' },
    { service: 'deep-wild', hosts: ['*.eu.example.com'], pathPrefix: '/only' },
  ]);

  it('takes exact hosts (any case, any port) before wildcards before any host', () => {
    expect(table.match('shop.example.com', '/x')).toBe('shop');
    expect(table.match('SHOP.example.COM:8080', '/x')).toBe('shop');
    expect(table.match('blog.example.com', '/x')).toBe('wild');
    expect(table.match('a.b.example.com', '/x')).toBe('wild');
    expect(table.match('example.com', '/x')).toBe('any-root');
    expect(table.match('other.org', '/x')).toBe('any-root');
    expect(table.match(undefined, '/x')).toBe('any-root');
  });

  it('matches each Host value on its own when the same ones repeat and alternate', () => {
    const hosts = ['shop.example.com', 'shop.example.com', 'SHOP.example.com:1', 'blog.example.com', 'shop.example.com', '', 'other.org', 'blog.example.com'];
    expect(hosts.map((h) => table.match(h, '/x'))).toEqual(['shop', 'shop', 'shop', 'wild', 'shop', 'any-root', 'any-root', 'wild']);
    expect(table.match(undefined, '/x')).toBe('any-root');
  });

  it('takes the longest prefix on a segment boundary, then falls back a tier', () => {
    expect(table.match('shop.example.com', '/admin')).toBe('shop-admin');
    expect(table.match('shop.example.com', '/admin/users')).toBe('shop-admin');
    expect(table.match('shop.example.com', '/administrator')).toBe('shop');
    expect(table.match('x.org', '/api')).toBe('any-api');
    expect(table.match('x.org', '/api/v2/users')).toBe('any-api-v2');
    expect(table.match('x.org', '/api/v20')).toBe('any-api');
    expect(table.match('x.org', '/apix')).toBe('any-root');
    // The longer wildcard matches the host but not the path: the shorter wildcard answers.
    expect(table.match('x.eu.example.com', '/only/this')).toBe('deep-wild');
    expect(table.match('x.eu.example.com', '/other')).toBe('wild');
  });

  it('reports a service shadowed by another on the same host and prefix, first by name winning', () => {
    const t = new RouteTable([{ service: 'b', pathPrefix: '/x' }, { service: 'a', pathPrefix: '/x/' }]);
    expect(t.match(undefined, '/x/1')).toBe('a');
    expect(t.shadowed).toEqual([{ service: 'b', by: 'a', host: '*', prefix: '/x' }]);
    expect(new RouteTable([{ service: 'only', hosts: ['a.com'] }]).match('b.com', '/')).toBeNull();
  });

  it('normalises hosts', () => {
    expect(normaliseHost('[::1]:8080')).toBe('[::1]');
    expect(normaliseHost('Example.COM.')).toBe('example.com');
  });
});

describe.each(FRONT_ENDS)('routing through the %s front end', (front) => {
  const fx = balancerFixture();

  it('sends each request to the service its host and path select, and answers 404 with a body otherwise', async () => {
    const api = await fx.backend('api');
    const web = await fx.backend('web');
    const admin = await fx.backend('admin');
    const master = new FakeMaster();
    const bal = await fx.balancer(front, { feed: { master } });
    master.service('api', { pathPrefix: '/api' });
    master.service('web', { hosts: ['www.example.com', '*.example.org'] });
    master.service('admin', { hosts: ['www.example.com', 'ops.example.com'], pathPrefix: '/admin' });
    master.running('api', 'api.0.0', api.port);
    master.running('web', 'web.0.0', web.port);
    master.running('admin', 'admin.0.0', admin.port);
    const c = fx.client();

    expect((await send(c, `${bal.url}/api/users?x=1`)).body).toBe('api GET /api/users?x=1\n');
    expect((await send(c, `${bal.url}/`, { headers: { host: 'WWW.example.com' } })).body).toBe('web GET /\n');
    expect((await send(c, `${bal.url}/admin/x`, { headers: { host: 'www.example.com:8080' } })).body).toBe('admin GET /admin/x\n');
    expect((await send(c, `${bal.url}/shop`, { headers: { host: 'shop.example.org' } })).body).toBe('web GET /shop\n');
    expect((await send(c, `${bal.url}/api`, { headers: { host: 'www.example.com' } })).body).toBe('web GET /api\n');
    // ops.example.com has no route for /api: the any-host service answers.
    expect((await send(c, `${bal.url}/api`, { headers: { host: 'ops.example.com' } })).body).toBe('api GET /api\n');

    const none = await send(c, `${bal.url}/nothing`, { headers: { host: 'unknown.net' } });
    expect(none.status).toBe(404);
    expect(none.headers['x-borealis-error']).toBe('no_route');
    expect(none.body).toBe('404 Not Found: no service routes host unknown.net path /nothing\n');
    expect(api.received.map((r) => r.url)).toEqual(['/api/users?x=1', '/api']);
  });
});
