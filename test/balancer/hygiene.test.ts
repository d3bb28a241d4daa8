/**
 * Header hygiene through each front end, on raw sockets: smuggling-shaped and malformed requests are refused with
 * our 400/431 (501 for a transfer coding we do not implement) and never reach a backend; a repeated identical
 * Content-Length goes out once; hop-by-hop headers are stripped both ways; X-Forwarded-* and Via set.
 */
import { describe, expect, it } from 'vitest';
import { checkRequest, forwardHeaders } from '../../src/balancer/headers.js';
import { REQUEST_LIMIT_DEFAULTS } from '../../src/balancer/index.js';
import { FRONT_ENDS, balancerFixture, rawExchange } from './helpers.js';

const H = 'Host: app.test\r\n';
/** Each: a raw request and the status it must get. */
const MALFORMED: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX`, 400],
  ['Transfer-Encoding with Content-Length', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX`, 400],
  ['two different Content-Lengths', `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 400],
  ['a Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 3, 4\r\n\r\nabcd`, 400],
  ['a non-numeric Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, 400],
  ['Transfer-Encoding not ending in chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, 400],
  ['an obfuscated Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['a transfer coding before chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 501],
  ['a transfer coding in its own header', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 501],
  ['chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 400],
  ['a space before the colon', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['a control character in a header name', `GET / HTTP/1.1\r\n${H}X-A\u0001b: 1\r\n\r\n`, 400],
  ['a NUL in a header value', `GET / HTTP/1.1\r\n${H}X-A: a\u0000b\r\n\r\n`, 400],
  ['an obs-fold continuation line', `GET / HTTP/1.1\r\n${H}X-A: a\r\n  b\r\n\r\n`, 400],
  ['two Host headers', `GET / HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`, 400],
  ['an absolute-form target', `GET http://evil.test/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['headers over the byte limit', `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ['more header fields than the limit', `GET / HTTP/1.1\r\n${H}${Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, 431],
];

/**
 * What uWebSockets.js' own parser refuses before any handler runs: it closes the connection, or holds the
 * request unanswered until its 10 s timeout, without a byte of response. Either way nothing is forwarded.
 * The two malformed Content-Lengths do reach our handler (and are counted), but uWS cuts the connection while
 * framing the body, before our 400 is out.
 */
const UWS_PARSER_REFUSES = new Set([
  'Content-Length with Transfer-Encoding',
  'Transfer-Encoding with Content-Length',
  'a space before the colon',
  'a control character in a header name',
  'a NUL in a header value',
  'an obs-fold continuation line',
  'an absolute-form target',
  'more header fields than the limit',
]);
const UWS_CUT_AFTER_HANDLER = new Set(['a Content-Length list', 'a non-numeric Content-Length']);
/** How long to wait for an answer uWS will never send (it only times the connection out after 10 s). */
const SILENCE_MS = 500;

describe('checkRequest', () => {
  const facts = { host: undefined as string | undefined, hasBody: false };
  const check = (raw: string[], method = 'GET', target = '/') => checkRequest(method, target, raw, REQUEST_LIMIT_DEFAULTS, facts);

  it('refuses what a lenient parser would let through', () => {
    expect(check(['Host', 'a', 'Content-Length', '3', 'transfer-encoding', 'chunked'])?.reason).toBe('both Content-Length and Transfer-Encoding');
    expect(check(['Content-Length', '3', 'content-length', '4'])?.reason).toBe('two different Content-Length values');
    expect(check(['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'identity'])?.reason).toBe('Transfer-Encoding must end with chunked');
    expect(check(['Bad Name', 'x'])?.reason).toBe('invalid header name');
    expect(check(['X-A', 'a\r\nInjected: 1'])?.reason).toBe('invalid value in header X-A');
    expect(check(['Host', 'a', 'host', 'b'])?.reason).toBe('more than one Host header');
    expect(check([], 'GET', '*')?.status).toBe(400);
    expect(check([], 'G E T')?.status).toBe(400);
    expect(check(new Array<string>(2 * 101).fill('x'))?.status).toBe(431);
    expect(check(['Transfer-Encoding', 'chunked, chunked'])?.reason).toBe('chunked applied more than once');
    expect(check(['Transfer-Encoding', ','])?.reason).toBe('Transfer-Encoding must end with chunked');
  });

  it('refuses transfer codings other than chunked with 501, never as chunked', () => {
    for (const te of [['gzip, chunked'], ['GZIP ,Chunked'], ['deflate', 'chunked'], ['identity, chunked'], ['x-custom, chunked']]) {
      const r = check(te.flatMap((v) => ['Transfer-Encoding', v]), 'POST');
      expect(r, te.join(' + ')).toMatchObject({ status: 501, kind: 'unsupported_coding' });
    }
    expect(check(['Transfer-Encoding', 'gzip, chunked'])?.reason).toBe('transfer coding gzip is not supported: send the body with chunked alone');
  });

  it('refuses a fragment or a malformed percent-encoding in the path, not in the query', () => {
    expect(check([], 'GET', '/a#b')?.reason).toBe('a fragment (#) in the request target');
    expect(check([], 'GET', '/a?q=1#b')?.reason).toBe('a fragment (#) in the request target');
    for (const t of ['/%zz', '/a%2', '/a%', '/%g0/x', '/%%41']) expect(check([], 'GET', t)?.reason, t).toBe('a malformed percent-encoding in the path');
    for (const t of ['/%2F', '/%e2%82%ac', '/a?q=100%', '/a?q=%zz']) expect(check([], 'GET', t), t).toBeNull();
  });

  it('accepts equal duplicate Content-Lengths and learns host and body presence', () => {
    expect(check(['Host', 'Example.com', 'Content-Length', '3', 'Content-Length', '3'])).toBeNull();
    expect(facts).toEqual({ host: 'Example.com', hasBody: true });
    expect(check(['Transfer-Encoding', 'chunked'])).toBeNull();
    expect(facts.hasBody).toBe(true);
    // Still chunked alone: any case, blanks and empty list elements (RFC 9110 §5.6.1).
    for (const te of ['Chunked', ' chunked ', ', chunked', 'chunked,']) expect(check(['Transfer-Encoding', te]), te).toBeNull();
    expect(check(['Content-Length', '0'])).toBeNull();
    expect(facts.hasBody).toBe(false);
  });
});

describe('forwardHeaders', () => {
  it('sends a repeated identical Content-Length once', () => {
    const out: string[] = [];
    forwardHeaders(['Host', 'a', 'Content-Length', '5', 'X-A', '1', 'content-length', '5'], '10.0.0.9', 'http', out);
    expect(out.filter((_, i) => i % 2 === 0 && out[i].toLowerCase() === 'content-length')).toHaveLength(1);
    expect(out.slice(0, 6)).toEqual(['Host', 'a', 'Content-Length', '5', 'X-A', '1']);
  });
});

describe.each(FRONT_ENDS)('header hygiene through the %s front end', (front) => {
  const fx = balancerFixture();

  it.each(MALFORMED)('refuses %s and forwards nothing', async (name, request, status) => {
    const backend = await fx.backend('b');
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'b', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    if (front === 'uws' && (UWS_PARSER_REFUSES.has(name) || UWS_CUT_AFTER_HANDLER.has(name))) {
      const reply = await rawExchange(bal.address!.port, request, 300, SILENCE_MS);
      expect(reply).toBe('');
      expect(backend.received).toEqual([]);
      const refused = bal.metrics.snapshot('t')?.refused ?? {};
      expect(Object.values(refused).reduce((a, b) => a + b, 0)).toBe(UWS_CUT_AFTER_HANDLER.has(name) ? 1 : 0);
      return;
    }
    const reply = await rawExchange(bal.address!.port, request);
    expect(reply).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(reply.toLowerCase()).toContain(`x-borealis-error: ${status === 431 ? 'headers_too_large' : status === 501 ? 'unsupported_coding' : 'bad_request'}`);
    expect(reply).toMatch(new RegExp(`\\r\\n\\r\\n${status} [A-Za-z ]+: .+\\n$`));
    // The same connection then carries nothing further either.
    expect(backend.received).toEqual([]);
    const stats = bal.metrics.snapshot('t')!;
    expect(Object.values(stats.refused).reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('forwards a repeated identical Content-Length once, or refuses it (node:http\'s parser does), never twice', async () => {
    const backend = await fx.backend('b');
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'b', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    const reply = await rawExchange(bal.address!.port, `POST /p HTTP/1.1\r\n${H}Content-Length: 5\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello`);
    if (front === 'node') {
      // llhttp refuses it before our handler (RFC 9110 §8.6 allows either answer): the clientError refusal.
      expect(reply).toMatch(/^HTTP\/1\.1 400 /);
      expect(reply).toContain('Duplicate Content-Length');
      expect(backend.received).toEqual([]);
      return;
    }
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply).toContain('b POST /p\n');
    const [rec] = backend.received;
    expect(rec.rawHeaders.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'content-length')).toHaveLength(1);
    expect(rec.headers['content-length']).toBe('5');
    expect(rec.bodyBytes).toBe(5);
  });

  it('strips hop-by-hop headers both ways and sets X-Forwarded-* and Via', async () => {
    const backend = await fx.backend('b', (req, res) => {
      req.resume();
      res.writeHead(200, [
        'Connection', 'X-Internal',
        'X-Internal', 'secret',
        'Keep-Alive', 'timeout=5',
        'Proxy-Authenticate', 'Basic',
        'Upgrade', 'h2c',
        'Via', '1.1 upstream',
        'X-Kept', 'yes',
        'Content-Length', '2',
      ]);
      res.end('ok');
    });
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'b', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    const reply = await rawExchange(
      bal.address!.port,
      'GET /h?q=1 HTTP/1.1\r\nHost: App.Test:8080\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s3cret\r\nKeep-Alive: timeout=9\r\n' +
        'TE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nExpect: 100-continue\r\n' +
        'X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nVia: 1.0 fred\r\nX-Custom: kept\r\n\r\n',
    );
    const [rec] = backend.received;
    const names = rec.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const gone of ['x-secret', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'expect']) expect(names).not.toContain(gone);
    // undici's own connection header to the endpoint is the only Connection there is.
    expect(rec.headers.connection ?? 'keep-alive').toBe('keep-alive');
    expect(rec.headers).toMatchObject({
      host: 'App.Test:8080',
      'x-custom': 'kept',
      'x-forwarded-for': '10.0.0.1, 127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'App.Test:8080',
      via: '1.0 fred, 1.1 borealis',
    });
    expect(rec.url).toBe('/h?q=1');

    // The front end answers Expect: 100-continue itself (uWS once per route it tries: twice for a GET, which HTTP
    // allows); the final response follows.
    const final = reply.replace(/^(HTTP\/1\.1 100 Continue\r\n\r\n)+/, '');
    const head = final.slice(0, final.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toMatch(/^http\/1\.1 200 ok/);
    for (const gone of ['x-internal', 'proxy-authenticate', 'upgrade']) expect(head).not.toContain(`\r\n${gone}:`);
    expect(head).toContain('\r\nx-kept: yes');
    expect(head).toContain('\r\nvia: 1.1 upstream, 1.1 borealis');
    expect(final.endsWith('\r\n\r\nok')).toBe(true);
  });
});
