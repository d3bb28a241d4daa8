/**
 * GET /ui and its assets over a real socket, on every transport this machine has: content types, caching
 * (a revalidated page, versioned immutable assets, ETag/304), the page's security headers, 404 for anything that
 * is not an asset, 503 when the files are missing; and finding the files from src/ and from dist/.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type HttpServer, type TransportKind, chooseTransport, createHttpServer } from '../../src/transport/index.js';
import { findStaticDir, mountDashboard } from '../../src/ui/index.js';

const ROOT = join(import.meta.dirname, '..', '..');
const STATIC = join(ROOT, 'src', 'ui', 'static');
/** uWebSockets.js only where its native binary loads; node:http everywhere. */
const TRANSPORTS: TransportKind[] = chooseTransport('auto').kind === 'uws' ? ['node', 'uws'] : ['node'];

const servers: HttpServer[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function serve(transport: TransportKind, dir?: string): Promise<string> {
  const server = createHttpServer({ transport });
  servers.push(server);
  mountDashboard(server, dir === undefined ? {} : { dir });
  const a = await server.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${a.port}`;
}

describe.each(TRANSPORTS)('the dashboard files over %s', (transport) => {
  it('serves the page at /ui with a revalidated cache, an ETag and its security headers', async () => {
    const base = await serve(transport);
    for (const path of ['/ui', '/ui/']) {
      const r = await fetch(base + path);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(r.headers.get('cache-control')).toBe('no-cache');
      expect(r.headers.get('etag')).toMatch(/^"[0-9a-f]{12}"$/);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('content-security-policy')).toContain("default-src 'self'");
      const html = await r.text();
      expect(html).toContain('<div id="zones"');
      // Every asset is asked for by its version, and no placeholder is left.
      expect(html).not.toContain('{{');
      expect(html).toMatch(/src="\/ui\/app\.js\?v=[0-9a-f]{12}"/);
      expect(html).toMatch(/href="\/ui\/style\.css\?v=[0-9a-f]{12}"/);
    }
  });

  it('serves each asset with its content type: versioned URLs for good, others revalidated', async () => {
    const base = await serve(transport);
    const html = await (await fetch(`${base}/ui`)).text();
    const js = /src="(\/ui\/app\.js\?v=([0-9a-f]{12}))"/.exec(html)!;
    const versioned = await fetch(base + js[1]);
    expect(versioned.status).toBe(200);
    expect(versioned.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(versioned.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(versioned.headers.get('etag')).toBe(`"${js[2]}"`);
    expect(await versioned.text()).toBe(readFileSync(join(STATIC, 'app.js'), 'utf8'));

    const plain = await fetch(`${base}/ui/app.js`);
    expect(plain.headers.get('cache-control')).toBe('no-cache');
    const stale = await fetch(`${base}/ui/app.js?v=000000000000`);
    expect(stale.headers.get('cache-control')).toBe('no-cache');

    const css = await fetch(`${base}/ui/style.css`);
    expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);
    expect(await css.text()).toBe(readFileSync(join(STATIC, 'style.css'), 'utf8'));
    const icon = await fetch(`${base}/ui/favicon.svg`);
    expect([icon.status, icon.headers.get('content-type')]).toEqual([200, 'image/svg+xml; charset=utf-8']);
  });

  it('answers a matching If-None-Match with 304 and no body', async () => {
    const base = await serve(transport);
    for (const path of ['/ui', '/ui/style.css']) {
      const etag = (await fetch(base + path)).headers.get('etag')!;
      const again = await fetch(base + path, { headers: { 'if-none-match': `W/"nope", ${etag}` } });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe('');
      const other = await fetch(base + path, { headers: { 'if-none-match': '"000000000000"' } });
      expect(other.status).toBe(200);
    }
  });

  it('404s anything that is not an asset, and refuses other methods', async () => {
    const base = await serve(transport);
    for (const path of ['/ui/nope.js', '/ui/%2e%2e%2fpackage.json', '/ui/..%2f..%2fpackage.json', '/ui/static', '/ui/app.js/x', '/ui/index.ts']) {
      const r = await fetch(base + path);
      expect(r.status, path).toBe(404);
      expect(((await r.json()) as { code: string }).code).toBe('BRL_ERR_NOT_FOUND');
    }
    const post = await fetch(`${base}/ui`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers 503 naming the directory when the files are missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'borealis-ui-empty-'));
    dirs.push(empty);
    const base = await serve(transport, empty);
    const r = await fetch(`${base}/ui`);
    expect(r.status).toBe(503);
    const body = (await r.json()) as { code: string; message: string };
    expect(body.code).toBe('BRL_ERR_UNAVAILABLE');
    expect(body.message).toContain(empty);
  });
});

describe('finding the files', () => {
  it('finds src/ui/static from src/ui (tests, tsx) and from dist/src/ui (after tsc), and nothing elsewhere', async () => {
    expect(findStaticDir(join(ROOT, 'src', 'ui'))).toBe(STATIC);
    expect(findStaticDir(join(ROOT, 'dist', 'src', 'ui'))).toBe(STATIC);
    expect(findStaticDir()).toBe(STATIC);
    const elsewhere = await mkdtemp(join(tmpdir(), 'borealis-ui-none-'));
    dirs.push(elsewhere);
    expect(findStaticDir(elsewhere)).toBeNull();
  });
});
