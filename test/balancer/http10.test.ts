/**
 * HTTP/1.0 clients and unparseable heads through each front end, on raw sockets: nginx proxies with HTTP/1.0 by
 * default and ab speaks it, so a front end must answer them (closing after the response unless the client asked
 * for keep-alive, a body without length ending with the close) and must answer a head it cannot parse with a 400
 * or a close, never hold it.
 *
 * uWebSockets.js 20.30 cannot: its parser takes such heads for incomplete ones and no callback of ours runs (see
 * front-uws.ts and native-free.md). Its cases assert exactly that documented behaviour (no response, nothing
 * forwarded, connection still open), so the day a uWS upgrade answers them this suite fails and says so.
 */
import { describe, expect, it } from 'vitest';
import { type Backend, type BackendHandler, FRONT_ENDS, balancerFixture } from './helpers.js';
import { exchange, splitResponses } from '../transport/exchange.js';

/** Generous: an answer takes milliseconds; this only makes a hang fail instead of lasting until uWS' 10 s timeout. */
const BOUND_MS = 5_000;
/** How long a uWS case waits to see that nothing comes (uWS would only drop the connection after 10 s). */
const SILENCE_MS = 500;
const H = 'Host: app.test\r\n';

/** Answers `/stream` in two writes without a length, anything else with its name and the request's version. */
const handler: BackendHandler = (req, res, b) => {
  req.resume();
  if (req.url === '/stream') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('part1\n');
    setImmediate(() => res.end('part2\n'));
    return;
  }
  res.end(`${b.name} ${req.method} ${req.url}\n`);
};

interface Case {
  name: string;
  request: string;
  /** What node:http must give (uWS gives nothing; see above). */
  check: (text: string, backend: Backend) => void;
}

function statusOf(head: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3}) /.exec(head)?.[1] ?? NaN);
}

/** A 400 with the connection closed, or just the close: anything but a hang, and nothing forwarded. */
function refusedOrClosed(text: string, backend: Backend): void {
  if (text !== '') expect(statusOf(text)).toBe(400);
  expect(backend.received).toEqual([]);
}

const CASES: Case[] = [
  {
    name: 'an HTTP/1.0 GET: answered, then closed',
    request: `GET /a HTTP/1.0\r\n${H}\r\n`,
    check: (text, backend) => {
      const [r, ...more] = splitResponses(text);
      expect(statusOf(r.head)).toBe(200);
      expect(r.body).toBe('b GET /a\n');
      expect(more).toEqual([]);
      expect(backend.received.map((x) => x.url)).toEqual(['/a']);
    },
  },
  {
    name: 'an HTTP/1.0 GET without Host (optional in 1.0): answered, then closed',
    request: 'GET /a HTTP/1.0\r\n\r\n',
    check: (text) => {
      const [r] = splitResponses(text);
      expect([statusOf(r.head), r.body]).toEqual([200, 'b GET /a\n']);
    },
  },
  {
    name: 'an HTTP/1.0 GET whose response has no length: not chunked, the body ends with the close',
    request: `GET /stream HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\n`,
    check: (text) => {
      const end = text.indexOf('\r\n\r\n');
      const head = text.slice(0, end);
      expect(statusOf(head)).toBe(200);
      expect(head.toLowerCase()).not.toContain('transfer-encoding');
      expect(text.slice(end + 4)).toBe('part1\npart2\n');
    },
  },
  {
    name: 'HTTP/1.0 with Connection: keep-alive: the connection serves the next request, which closes it',
    request: `GET /1 HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n${H}\r\n`,
    check: (text, backend) => {
      const rs = splitResponses(text);
      expect(rs.map((r) => [statusOf(r.head), r.body])).toEqual([
        [200, 'b GET /1\n'],
        [200, 'b GET /2\n'],
      ]);
      expect(rs[0].head.toLowerCase()).toContain('\r\nconnection: keep-alive');
      expect(backend.received.map((x) => x.url)).toEqual(['/1', '/2']);
    },
  },
  { name: 'a garbage request line: 400 or closed', request: 'garbage\r\n\r\n', check: refusedOrClosed },
  { name: 'an HTTP/1.1 request without Host: 400 or closed', request: 'GET /a HTTP/1.1\r\n\r\n', check: refusedOrClosed },
];

describe.each(FRONT_ENDS)('HTTP/1.0 and unparseable heads through the %s front end', (front) => {
  const fx = balancerFixture();

  it.each(CASES)('$name', async ({ request, check }) => {
    const backend = await fx.backend('b', handler);
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'b', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    if (front === 'uws') {
      // uWS 20.30 holds these heads as incomplete: no answer, no close, nothing forwarded.
      expect(await exchange(bal.address!.port, request, SILENCE_MS)).toEqual({ text: '', closed: false });
      expect(backend.received).toEqual([]);
      return;
    }
    const r = await exchange(bal.address!.port, request, BOUND_MS);
    expect(r.closed).toBe(true);
    check(r.text, backend);
  });

  it('closes at once on an unknown method, without forwarding it', async () => {
    const backend = await fx.backend('b', handler);
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'b', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    const r = await exchange(bal.address!.port, `FOO / HTTP/1.1\r\n${H}\r\n`, BOUND_MS);
    expect(r.closed).toBe(true);
    // node:http: our 400; uWS: its parser's close, without a byte.
    if (front === 'uws') expect(r.text).toBe('');
    else expect(statusOf(r.text)).toBe(400);
    expect(backend.received).toEqual([]);
  });
});
