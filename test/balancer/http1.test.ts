/**
 * The balancer's own HTTP/1.1 upstream client (src/balancer/http1/): the response parser fed in every split, its
 * framing and keep-alive rules and its refusals; the pool against real node:http and raw node:net servers on
 * 127.0.0.1 (reuse, the connection limit and its FIFO queue, idle close, a reused socket closed under us,
 * timeouts, backpressure, aborts, upgrades, request body framing).
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { BodySink, BodySource, DispatchOptions, RequestControl, UpstreamHandler } from '../../src/balancer/http1/contract.js';
import { UpstreamCode } from '../../src/balancer/http1/errors.js';
import { Http1Pool, type Http1PoolOptions } from '../../src/balancer/http1/pool.js';
import { ParseState, ResponseParser, type ResponseSink } from '../../src/balancer/http1/response-parser.js';
import { BodyFraming, requestHead } from '../../src/balancer/http1/request-head.js';
import { TIMEOUT_DEFAULTS, classify } from '../../src/balancer/upstream.js';
import { waitFor } from './helpers.js';

// ---- the parser ------------------------------------------------------------------------------------

interface Parsed {
  state: number;
  status: number;
  headers: string[];
  body: string;
  keepAlive: boolean;
  keepAliveHintMs: number;
  error: string;
  /** Where parsing stopped in the whole input. */
  stoppedAt: number;
  heads: number;
}

class Collect implements ResponseSink {
  status = 0;
  headers: string[] = [];
  body: Buffer[] = [];
  heads = 0;
  onResponseHead(status: number, headers: string[]): void {
    this.status = status;
    this.headers = headers.slice();
    this.heads++;
  }
  onResponseBody(buf: Buffer, start: number, end: number): void {
    this.body.push(Buffer.from(buf.subarray(start, end)));
  }
}

/**
 * Feeds `input` in the pieces `cuts` makes, each copied into a larger buffer with garbage after it (as the shared
 * read buffer would have stale bytes), then EOF when `eof`.
 */
function parse(input: string, cuts: number[] = [], opts: { head?: boolean; upgrade?: boolean; eof?: boolean; maxHead?: number } = {}): Parsed {
  const sink = new Collect();
  const p = new ResponseParser(sink, opts.maxHead);
  p.begin(opts.head ?? false, opts.upgrade ?? false);
  const bytes = Buffer.from(input, 'latin1');
  const bounds = [0, ...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length];
  let stoppedAt = bytes.length;
  for (let k = 0; k + 1 < bounds.length; k++) {
    const piece = bytes.subarray(bounds[k], bounds[k + 1]);
    const buf = Buffer.alloc(piece.length + 64, '\r\n\r\nHTTP/1.1 200 OK\r\n\r\n');
    piece.copy(buf, 8);
    const at = p.execute(buf, 8, 8 + piece.length);
    if (at < 8 + piece.length) {
      stoppedAt = bounds[k] + at - 8;
      break;
    }
  }
  if (opts.eof) p.finish();
  return {
    state: p.state,
    status: sink.status,
    headers: sink.headers,
    body: Buffer.concat(sink.body).toString('latin1'),
    keepAlive: p.keepAlive,
    keepAliveHintMs: p.keepAliveHintMs,
    error: p.error,
    stoppedAt,
    heads: sink.heads,
  };
}

/** Every way to cut `input` in two, and in single bytes. */
function everySplit(input: string, check: (r: Parsed, how: string) => void, opts: Parameters<typeof parse>[2] = {}): void {
  check(parse(input, [], opts), 'whole');
  for (let i = 1; i < input.length; i++) check(parse(input, [i], opts), `cut at ${i}`);
  check(
    parse(
      input,
      Array.from({ length: input.length }, (_, i) => i),
      opts,
    ),
    'byte by byte',
  );
}

describe('ResponseParser', () => {
  it('parses a Content-Length response in any split, headers as latin1 strings', () => {
    const input = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Latin: caf\xe9\r\n\r\nhello world';
    everySplit(input, (r, how) => {
      expect([r.state, r.status, r.body, r.keepAlive], how).toEqual([ParseState.DONE, 200, 'hello world', true]);
      expect(r.headers, how).toEqual(['Content-Type', 'text/plain', 'Content-Length', '11', 'X-Latin', 'caf\xe9']);
    });
  });

  it('decodes chunked bodies in any split: extensions, upper-case hex, leading zeros, trailers dropped', () => {
    const input =
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5\r\nhello\r\n' +
      '0001;name=value\r\n \r\n' +
      'A ; ext\r\n0123456789\r\n' +
      '0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n';
    everySplit(input, (r, how) => {
      expect([r.state, r.body, r.keepAlive, r.stoppedAt], how).toEqual([ParseState.DONE, 'hello 0123456789', true, input.length]);
    });
    everySplit('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n0\r\n\r\n', (r, how) => {
      expect([r.state, r.body], how).toEqual([ParseState.DONE, '']);
    });
  });

  it('refuses broken chunked framing', () => {
    const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    for (const body of ['x\r\n', '\r\n', '5\r\nhelloXX', '5\r\nhello\rX', '5\nhello\r\n', '12345678901234\r\n', '5 x\r\n', '0\r\nX: y\n\r\n', '0\r\n\rX']) {
      everySplit(head + body, (r, how) => expect(r.state, `${JSON.stringify(body)} ${how}`).toBe(ParseState.ERROR));
    }
  });

  it('reads a body without framing until the connection closes, and never reuses its connection', () => {
    everySplit(
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end',
      (r, how) => expect([r.state, r.body, r.keepAlive], how).toEqual([ParseState.DONE, 'until the end', false]),
      { eof: true },
    );
    // Not chunked last: also until the close (RFC 9112 §6.3).
    const r = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz', [], { eof: true });
    expect([r.state, r.body, r.keepAlive]).toEqual([ParseState.DONE, 'zzz', false]);
    // Cut short: not complete.
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', [], { eof: true }).state).toBe(ParseState.LENGTH);
  });

  it('reads no body after HEAD, 204 and 304, and skips interim 1xx responses', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n', [], { head: true })).toMatchObject({ state: ParseState.DONE, body: '', keepAlive: true });
    for (const s of ['204 No Content', '304 Not Modified']) {
      expect(parse(`HTTP/1.1 ${s}\r\nContent-Length: 50\r\n\r\n`)).toMatchObject({ state: ParseState.DONE, body: '' });
    }
    const interim = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok';
    everySplit(interim, (r, how) => {
      expect([r.state, r.status, r.body, r.heads], how).toEqual([ParseState.DONE, 201, 'ok', 1]);
      expect(r.headers, how).toEqual(['Content-Length', '2']);
    });
  });

  it('stops at a 101 to an upgrade request (the rest is the new protocol), refuses one to any other request', () => {
    const input = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello';
    everySplit(
      input,
      (r, how) => {
        expect([r.state, r.status, r.stoppedAt], how).toEqual([ParseState.UPGRADED, 101, input.indexOf('\x81')]);
      },
      { upgrade: true },
    );
    expect(parse(input).state).toBe(ParseState.ERROR);
  });

  it('decides keep-alive from the version, Connection and Keep-Alive: timeout', () => {
    const ok = 'Content-Length: 0\r\n\r\n';
    expect(parse(`HTTP/1.1 200 OK\r\n${ok}`)).toMatchObject({ keepAlive: true, keepAliveHintMs: -1 });
    expect(parse(`HTTP/1.0 200 OK\r\n${ok}`).keepAlive).toBe(false);
    expect(parse(`HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n${ok}`).keepAlive).toBe(false);
    expect(parse(`HTTP/1.1 200 OK\r\nConnection: CLOSE\r\n${ok}`).keepAlive).toBe(false);
    expect(parse(`HTTP/1.1 200 OK\r\nConnection: x-foo, close\r\n${ok}`).keepAlive).toBe(false);
    expect(parse(`HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\n${ok}`)).toMatchObject({
      keepAlive: true,
      keepAliveHintMs: 5000,
    });
    // No reason phrase at all is valid.
    expect(parse(`HTTP/1.1 200\r\n${ok}`)).toMatchObject({ state: ParseState.DONE, status: 200 });
  });

  it('refuses malformed responses, whichever way they are cut', () => {
    const bad: [string, string][] = [
      ['HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status line'],
      ['HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
      ['HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n', 'invalid status line'],
      ['HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n', 'invalid status code'],
      ['ICY 200 OK\r\nContent-Length: 0\r\n\r\n', 'invalid status line'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', 'both Content-Length and Transfer-Encoding'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 'conflicting Content-Length values'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello', 'invalid Content-Length'],
      ['HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello', 'invalid Content-Length'],
      ['HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello', 'invalid header name'],
      ['HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n', 'invalid header line'],
      ['HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\n', 'invalid character in a header value'],
      ['HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n', 'invalid character in a header value'],
      ['HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n', 'header line not ended by CRLF'],
    ];
    for (const [input, why] of bad) everySplit(input, (r, how) => expect([r.state, r.error], `${JSON.stringify(input)} ${how}`).toEqual([ParseState.ERROR, why]));
    // Equal duplicates are one value.
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok')).toMatchObject({ state: ParseState.DONE, body: 'ok' });
  });

  it('refuses a head larger than its limit, whole or gathered across reads', () => {
    const big = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(300)}\r\nContent-Length: 0\r\n\r\n`;
    expect(parse(big, [], { maxHead: 256 })).toMatchObject({ state: ParseState.ERROR, error: 'response head too large' });
    expect(parse(big, [40, 90, 200], { maxHead: 256 })).toMatchObject({ state: ParseState.ERROR, error: 'response head too large' });
    expect(parse(big, [40, 90, 200], { maxHead: 512 })).toMatchObject({ state: ParseState.DONE });
    // A head that never ends (no CRLFCRLF) hits the limit too.
    expect(parse(`HTTP/1.1 200 OK\r\n${'X-A: 1\r\n'.repeat(100)}`, [100, 300, 500, 700], { maxHead: 512 }).state).toBe(ParseState.ERROR);
  });

  it('is reused across responses on one connection and says where a response ended', () => {
    const sink = new Collect();
    const p = new ResponseParser(sink);
    const one = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGARBAGE', 'latin1');
    p.begin(false, false);
    expect(p.execute(one, 0, one.length)).toBe(one.length - 'GARBAGE'.length);
    expect(p.state).toBe(ParseState.DONE);
    const two = Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop', 'latin1');
    p.begin(false, false);
    expect(p.execute(two, 0, two.length)).toBe(two.length);
    expect([p.state, sink.status, Buffer.concat(sink.body).toString()]).toEqual([ParseState.DONE, 404, 'abcnop']);
  });

  it('answers a head repeated byte for byte as it did the first time, and only then', () => {
    const sink = new Collect();
    const p = new ResponseParser(sink);
    // [head + body, isHEAD request] -> expected [state, status, headers, body, keepAlive, hint]; same-length heads
    // that differ in one byte (status, length, Connection, Keep-Alive, an invalid byte) must not reuse the last.
    const close = 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n';
    const keep = 'HTTP/1.1 200 OK\r\nConnection: xlose\r\nContent-Length: 2\r\n\r\n';
    const cases: [string, boolean, [number, number, string[], string, boolean, number]][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nab', false, [ParseState.DONE, 200, ['Content-Length', '2', 'Keep-Alive', 'timeout=5'], 'ab', true, 5000]],
      ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\ncd', false, [ParseState.DONE, 200, ['Content-Length', '2', 'Keep-Alive', 'timeout=5'], 'cd', true, 5000]],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\n\r\nefg', false, [ParseState.DONE, 200, ['Content-Length', '3', 'Keep-Alive', 'timeout=5'], 'efg', true, 5000]],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\n\r\n', true, [ParseState.DONE, 200, ['Content-Length', '3', 'Keep-Alive', 'timeout=5'], '', true, 5000]],
      ['HTTP/1.1 500 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\n\r\nhij', false, [ParseState.DONE, 500, ['Content-Length', '3', 'Keep-Alive', 'timeout=5'], 'hij', true, 5000]],
      [`${close}kl`, false, [ParseState.DONE, 200, ['Connection', 'close', 'Content-Length', '2'], 'kl', false, -1]],
      [`${keep}mn`, false, [ParseState.DONE, 200, ['Connection', 'xlose', 'Content-Length', '2'], 'mn', true, -1]],
      [`${close}op`, false, [ParseState.DONE, 200, ['Connection', 'close', 'Content-Length', '2'], 'op', false, -1]],
      ['HTTP/1.1 200 OK\r\nConnection: c\x01ose\r\nContent-Length: 2\r\n\r\nqr', false, [ParseState.ERROR, 200, ['Connection', 'close', 'Content-Length', '2'], '', false, -1]],
      [`${close}st`, false, [ParseState.DONE, 200, ['Connection', 'close', 'Content-Length', '2'], 'st', false, -1]],
    ];
    for (const [input, isHead, want] of cases) {
      const b = Buffer.from(input, 'latin1');
      sink.body = [];
      p.begin(isHead, false);
      p.execute(b, 0, b.length);
      const got = [p.state, p.status, sink.headers, Buffer.concat(sink.body).toString('latin1'), p.keepAlive, p.keepAliveHintMs];
      expect(got, JSON.stringify(input)).toEqual(want);
    }
  });

  it('gives each head its own header text on a reused parser (same lengths, different bytes, other positions)', () => {
    const sink = new Collect();
    const p = new ResponseParser(sink);
    const heads = [
      'HTTP/1.1 200 OK\r\nServer: aaa\r\nDate: 1\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nServer: aab\r\nDate: 1\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nServer: aab\r\nDATE: 2\r\nX-Ext: \xe9\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nDate: 2\r\nServer: aab\r\nContent-Length: 0\r\n\r\n',
    ];
    const seen: string[][] = [];
    for (const h of heads) {
      const b = Buffer.from(h, 'latin1');
      p.begin(false, false);
      expect(p.execute(b, 0, b.length)).toBe(b.length);
      seen.push(sink.headers);
    }
    expect(seen).toEqual([
      ['Server', 'aaa', 'Date', '1', 'Content-Length', '0'],
      ['Server', 'aab', 'Date', '1', 'Content-Length', '0'],
      ['Server', 'aab', 'DATE', '2', 'X-Ext', '\xe9', 'Content-Length', '0'],
      ['Date', '2', 'Server', 'aab', 'Content-Length', '0'],
    ]);
  });
});

describe('requestHead', () => {
  it('adds Host when missing and frames a body without Content-Length as chunked', () => {
    const out = { framing: -1 };
    expect(requestHead('GET', '/a?b', ['X-A', '1'], false, null, '127.0.0.1:80', out)).toBe('GET /a?b HTTP/1.1\r\nX-A: 1\r\nhost: 127.0.0.1:80\r\n\r\n');
    expect(out.framing).toBe(BodyFraming.NONE);
    expect(requestHead('POST', '/', ['Host', 'h', 'Content-Length', '3'], true, null, 'x', out)).toBe('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n');
    expect(out.framing).toBe(BodyFraming.LENGTH);
    expect(requestHead('POST', '/', ['host', 'h'], true, null, 'x', out)).toBe('POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n');
    expect(out.framing).toBe(BodyFraming.CHUNKED);
    expect(requestHead('GET', '/ws', ['Host', 'h'], false, 'websocket', 'x', out)).toBe('GET /ws HTTP/1.1\r\nHost: h\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
  });
});

// ---- the pool --------------------------------------------------------------------------------------

/** Records one request's life through the handler contract. */
class Recorder implements UpstreamHandler {
  status = 0;
  headers: string[] = [];
  chunks: Buffer[] = [];
  control: RequestControl | null = null;
  connected = false;
  error: (Error & { code?: string }) | null = null;
  upgraded: { status: number; socket: Duplex } | null = null;
  /** onData returns this. */
  accept = true;
  onAfterHeaders: ((r: Recorder) => void) | null = null;
  readonly done: Promise<void>;
  #resolve!: () => void;
  completed = false;

  constructor() {
    this.done = new Promise((r) => (this.#resolve = r));
  }
  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
  onConnect(control: RequestControl): void {
    this.connected = true;
    this.control = control;
  }
  onHeaders(status: number, headers: readonly string[]): boolean {
    this.status = status;
    this.headers = [...headers];
    this.onAfterHeaders?.(this);
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return this.accept;
  }
  onComplete(): void {
    this.completed = true;
    this.#resolve();
  }
  onError(err: Error): void {
    this.error = err;
    this.#resolve();
  }
  onUpgrade(status: number, _headers: readonly string[], socket: Duplex): void {
    this.upgraded = { status, socket };
    this.#resolve();
  }
}

/** A body source with its chunks at hand: all of them are written at once, then the end. */
class FixedBody implements BodySource {
  constructor(readonly chunks: string[]) {}
  startBody(sink: BodySink): void {
    for (const c of this.chunks) sink.writeBody(Buffer.from(c));
    sink.endBody();
  }
  onBodyDrain(): void {}
  stopBody(): void {}
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface HttpBackend {
  port: number;
  server: Server;
  /** Connections accepted so far. */
  connections: Socket[];
  requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
}

async function httpBackend(handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, s) => s.end('ok')): Promise<HttpBackend> {
  const b: HttpBackend = { port: 0, server: createServer(), connections: [], requests: [] };
  b.server.on('connection', (s: Socket) => b.connections.push(s));
  b.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
    b.requests.push(rec);
    req.setEncoding('latin1');
    req.on('data', (c: string) => (rec.body += c));
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
  b.port = (b.server.address() as { port: number }).port;
  cleanups.push(() => {
    for (const s of b.connections) s.destroy();
    return new Promise<void>((r) => b.server.close(() => r()));
  });
  return b;
}

/** A raw TCP server: `onData` sees each connection's bytes (as latin1) and answers on the socket itself. */
async function rawBackend(onData: (s: Socket, data: string, n: number) => void): Promise<{ port: number; server: NetServer; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createNetServer((s) => {
    const n = sockets.push(s) - 1;
    s.on('error', () => undefined);
    s.setEncoding('latin1');
    s.on('data', (d: string) => onData(s, d, n));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as { port: number }).port, server, sockets };
}

function pool(port: number, o: Partial<Http1PoolOptions> = {}): Http1Pool {
  const p = new Http1Pool('127.0.0.1', port, { timeouts: { ...TIMEOUT_DEFAULTS }, maxConnections: 8, keepAliveMs: 4_000, ...o });
  cleanups.push(() => p.destroy());
  return p;
}

function get(path = '/', extra: Partial<DispatchOptions> = {}): DispatchOptions {
  return { method: 'GET', path, headers: ['host', 'backend.test'], body: null, ...extra };
}

async function run(p: Http1Pool, opts: DispatchOptions = get()): Promise<Recorder> {
  const r = new Recorder();
  p.dispatch(opts, r);
  await r.done;
  return r;
}

describe('Http1Pool', () => {
  it('reuses one keep-alive connection for sequential requests and streams chunked responses', async () => {
    const b = await httpBackend((req, res) => {
      res.write(`${req.url} `);
      res.end('done');
    });
    const p = pool(b.port);
    for (let i = 0; i < 5; i++) {
      const r = await run(p, get(`/r${i}`));
      expect([r.status, r.body, r.error]).toEqual([200, `/r${i} done`, null]);
      expect(r.headers).toContain('Transfer-Encoding');
    }
    expect(b.connections).toHaveLength(1);
    expect([p.connections, p.idle]).toEqual([1, 1]);
    // HEAD: no body, whatever the head says; the connection stays reusable.
    const head = await run(p, get('/h', { method: 'HEAD' }));
    expect([head.status, head.body, head.completed]).toEqual([200, '', true]);
    expect((await run(p, get('/after'))).body).toBe('/after done');
    expect(b.connections).toHaveLength(1);
  });

  it('opens at most maxConnections and serves the rest in arrival order', async () => {
    const held: [string, ServerResponse][] = [];
    const b = await httpBackend((req, res) => held.push([req.url ?? '', res]));
    const p = pool(b.port, { maxConnections: 2 });
    const rs = Array.from({ length: 5 }, () => new Recorder());
    rs.forEach((r, i) => p.dispatch(get(`/q${i}`), r));
    await waitFor(() => held.length === 2, 'two requests at the backend');
    expect([p.connections, p.queued]).toEqual([2, 3]);
    // Each answer frees a connection for the oldest waiting request.
    for (let i = 0; i < 5; i++) {
      await waitFor(() => held.length > i, `request ${i} at the backend`);
      held[i][1].end(`answer to ${held[i][0]}`);
    }
    await Promise.all(rs.map((r) => r.done));
    expect(held.slice(0, 2).map((h) => h[0]).sort()).toEqual(['/q0', '/q1']);
    expect(held.slice(2).map((h) => h[0])).toEqual(['/q2', '/q3', '/q4']);
    expect(rs.map((r) => r.body)).toEqual(rs.map((_, i) => `answer to /q${i}`));
    expect(b.connections).toHaveLength(2);
  });

  it('closes idle connections after keepAliveMs, and does not reuse one the endpoint will close within its margin', async () => {
    const b = await httpBackend();
    const p = pool(b.port, { keepAliveMs: 100 });
    await run(p);
    await waitFor(() => b.connections[0].destroyed, 'the idle connection to close');
    await waitFor(() => p.connections === 0, 'the pool to forget it');

    const hinted = await rawBackend((s) => s.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 5\r\n\r\nshort'));
    const q = pool(hinted.port);
    expect((await run(q)).body).toBe('short');
    expect((await run(q)).body).toBe('short');
    // timeout=1 less the one-second margin leaves nothing: every request had a fresh connection.
    expect(hinted.sockets).toHaveLength(2);
  });

  it('closes after HTTP/1.0, Connection: close and close-delimited responses', async () => {
    const answers = [
      'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nv0',
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\ncl',
      'HTTP/1.1 200 OK\r\n\r\nuntil close',
    ];
    const b = await rawBackend((s, _d, n) => {
      s.write(answers[n]);
      if (n === 2) s.end();
    });
    const p = pool(b.port);
    const bodies = [];
    for (let i = 0; i < 3; i++) bodies.push((await run(p)).body);
    expect(bodies).toEqual(['v0', 'cl', 'until close']);
    expect(b.sockets).toHaveLength(3);
  });

  it('fails a request whose reused connection the endpoint closed before answering, as a reset after connecting', async () => {
    let served = 0;
    const b = await rawBackend((s) => {
      if (served++ === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else s.destroy();
    });
    const p = pool(b.port);
    expect((await run(p)).body).toBe('ok');
    const r = await run(p);
    expect(r.connected).toBe(true);
    // (A FIN, as the backend read our request; a reset would do the same.)
    expect([UpstreamCode.closed, 'ECONNRESET']).toContain(r.error?.code);
    const f = classify(r.error!, 'ep', r.connected);
    expect([f.kind, f.status, f.beforeRequest, f.endpointFault]).toEqual(['reset', 502, false, true]);
    expect(b.sockets).toHaveLength(1);
    // A connection the endpoint closed while idle is noticed, and the next request gets a new one.
    served = 0;
    expect((await run(p)).body).toBe('ok');
    b.sockets[1].end();
    await waitFor(() => p.connections === 0, 'the pool to drop the closed connection');
    served = 0;
    expect((await run(p)).body).toBe('ok');
  });

  it('refuses malformed responses as an endpoint fault and a 101 nobody asked for', async () => {
    const b = await rawBackend((s, d) => {
      if (d.startsWith('GET /both')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
      else if (d.startsWith('GET /101')) s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n');
      else s.write('HTTP/1.1 2OO OK\r\n\r\n');
    });
    const p = pool(b.port);
    for (const path of ['/both', '/101', '/status']) {
      const r = await run(p, get(path));
      expect(r.status, path).toBe(0);
      const f = classify(r.error!, 'ep', true);
      expect([f.kind, f.status, f.endpointFault], path).toEqual(['protocol', 502, true]);
    }
    expect(p.connections).toBe(0);
  });

  it('times out a response head and a stalled body', async () => {
    const b = await rawBackend((s, d) => {
      if (d.startsWith('GET /stall')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
    });
    const p = pool(b.port, { timeouts: { connectMs: 5_000, headersMs: 150, bodyIdleMs: 150 } });
    const silent = await run(p, get('/silent'));
    expect(silent.error?.code).toBe(UpstreamCode.headersTimeout);
    expect(classify(silent.error!, 'ep', true).kind).toBe('headers_timeout');
    const stall = await run(p, get('/stall'));
    expect([stall.status, stall.body, stall.error?.code]).toEqual([200, 'partial', UpstreamCode.bodyTimeout]);
    expect(classify(stall.error!, 'ep', true).kind).toBe('body_timeout');
    await waitFor(() => b.sockets.every((s) => s.destroyed), 'both connections to close');
  });

  it('fails to connect with the socket error classify() knows', async () => {
    const b = await httpBackend();
    const port = b.port;
    await new Promise<void>((r) => b.server.close(() => r()));
    const r = await run(pool(port));
    expect([r.connected, r.error?.code]).toEqual([false, 'ECONNREFUSED']);
    expect(classify(r.error!, 'ep', false)).toMatchObject({ kind: 'connect', beforeRequest: true });
  });

  it('pauses the response body while the handler is full and resumes on resume()', async () => {
    // More than loopback's socket buffers can hold, so that the backend has to wait for us.
    const total = 32 * 1024 * 1024;
    let blocked = false;
    const b = await httpBackend((_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      const piece = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += piece.length;
          if (!res.write(piece)) {
            blocked = true;
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const p = pool(b.port);
    const r = new Recorder();
    r.accept = false;
    p.dispatch(get('/big'), r);
    // The backend only blocks when we stop reading.
    await waitFor(() => blocked && r.chunks.length > 0, 'the backend to be blocked by our pause');
    // Paused after the first piece: nothing more was read.
    expect(r.chunks.length).toBe(1);
    r.accept = true;
    r.control!.resume();
    await r.done;
    expect([r.error, Buffer.concat(r.chunks).length]).toEqual([null, total]);
  });

  it('destroys an aborted request\'s connection instead of reusing it', async () => {
    const b = await httpBackend((_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('12345');
    });
    const p = pool(b.port);
    const r = new Recorder();
    r.onAfterHeaders = (x) => x.control!.abort(Object.assign(new Error('client left'), { code: 'TEST_ABORT' }));
    p.dispatch(get('/'), r);
    await r.done;
    expect(r.error?.code).toBe('TEST_ABORT');
    await waitFor(() => b.connections[0].destroyed, 'the connection to close');
    expect(p.connections).toBe(0);
  });

  it('writes request bodies as they are framed: Content-Length as is, chunked otherwise', async () => {
    const b = await httpBackend((req, res) => res.end(`${req.headers['transfer-encoding'] ?? '-'} ${req.headers['content-length'] ?? '-'}`));
    const p = pool(b.port);
    const chunked = await run(p, { method: 'POST', path: '/c', headers: ['host', 'h'], body: new FixedBody(['abc', '', 'defg']) });
    expect(chunked.body).toBe('chunked -');
    const sized = await run(p, { method: 'PUT', path: '/l', headers: ['host', 'h', 'content-length', '7'], body: new FixedBody(['abc', 'defg']) });
    expect(sized.body).toBe('- 7');
    expect(b.requests.map((r) => r.body)).toEqual(['abcdefg', 'abcdefg']);
    expect(b.connections).toHaveLength(1);
  });

  it('hands the socket over on a 101 with the bytes that came after its head', async () => {
    const b = await rawBackend((s, d) => {
      if (d.includes('upgrade: echo')) s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly');
      else s.write(d.toUpperCase());
    });
    const p = pool(b.port);
    const r = await run(p, get('/ws', { upgrade: 'echo' }));
    expect(r.upgraded?.status).toBe(101);
    const socket = r.upgraded!.socket;
    cleanups.push(() => socket.destroy());
    let got = '';
    socket.setEncoding('latin1');
    // Handed over paused (nothing is lost before a reader attaches).
    socket.on('data', (c: string) => (got += c));
    socket.resume();
    socket.write('then this');
    await waitFor(() => got === 'earlyTHEN THIS', 'the early bytes then the echo');
    // The upgraded connection left the pool.
    expect(p.connections).toBe(0);
  });

  it('fails queued requests when destroyed, and close() waits for the ones in flight', async () => {
    const held: ServerResponse[] = [];
    const b = await httpBackend((_req, res) => held.push(res));
    const p = pool(b.port, { maxConnections: 1 });
    const first = new Recorder();
    const queued = new Recorder();
    p.dispatch(get('/1'), first);
    p.dispatch(get('/2'), queued);
    await waitFor(() => held.length === 1, 'the first request at the backend');
    const closed = p.close();
    const late = await run(p);
    expect(late.error?.code).toBe(UpstreamCode.poolClosed);
    expect(classify(late.error!, 'ep', false)).toMatchObject({ kind: 'reset', beforeRequest: true, endpointFault: false });
    held[0].end('one');
    await waitFor(() => held.length === 2, 'the queued request served before the close');
    held[1].end('two');
    await closed;
    expect([first.body, queued.body]).toEqual(['one', 'two']);
    expect(p.connections).toBe(0);

    const q = pool(b.port, { maxConnections: 1 });
    const inFlight = new Recorder();
    const waiting = new Recorder();
    q.dispatch(get('/3'), inFlight);
    q.dispatch(get('/4'), waiting);
    await waitFor(() => held.length === 3, 'the third request at the backend');
    await q.destroy();
    await Promise.all([inFlight.done, waiting.done]);
    expect([inFlight.error?.code, waiting.error?.code]).toEqual([UpstreamCode.destroyed, UpstreamCode.poolClosed]);
  });
});
