/**
 * HTTP/1.0 clients and unparseable heads against both HttpServers (the master API's), on raw sockets: health
 * checkers and proxies that speak HTTP/1.0 must get their answer and a close (or keep-alive when they ask), and a
 * head that cannot be parsed must get a 400 or a close, never a hang.
 *
 * uWebSockets.js 20.30 cannot: its parser takes such heads for incomplete ones and no callback of ours runs (see
 * uws-server.ts and native-free.md). Its cases assert exactly that (no response, the handler never called, the
 * connection still open), so the day a uWS upgrade answers them this suite fails and says so.
 */
import { describe, expect, it } from 'vitest';
import { TRANSPORTS, fixture } from './helpers.js';
import { exchange, splitResponses } from './exchange.js';

/** Generous: an answer takes milliseconds; this only makes a hang fail instead of lasting until uWS' 10 s timeout. */
const BOUND_MS = 5_000;
/** How long a uWS case waits to see that nothing comes (uWS would only drop the connection after 10 s). */
const SILENCE_MS = 500;

function statusOf(head: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3}) /.exec(head)?.[1] ?? NaN);
}

interface Case {
  name: string;
  request: string;
  /** What node:http must give: the responses on the connection, and how many times the handler ran. */
  check: (text: string, calls: number) => void;
}

const refusedOrClosed = (text: string, calls: number): void => {
  if (text !== '') expect(statusOf(text)).toBe(400);
  expect(calls).toBe(0);
};

const CASES: Case[] = [
  {
    name: 'an HTTP/1.0 GET /health: answered, then closed',
    request: 'GET /health HTTP/1.0\r\n\r\n',
    check: (text, calls) => {
      expect(splitResponses(text).map((r) => [statusOf(r.head), r.body])).toEqual([[200, '{"ok":true}']]);
      expect(calls).toBe(1);
    },
  },
  {
    name: 'HTTP/1.0 with Connection: keep-alive: the connection serves the next request, which closes it',
    request: 'GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.0\r\n\r\n',
    check: (text, calls) => {
      const rs = splitResponses(text);
      expect(rs.map((r) => [statusOf(r.head), r.body])).toEqual([
        [200, '{"ok":true}'],
        [200, '{"ok":true}'],
      ]);
      expect(rs[0].head.toLowerCase()).toContain('\r\nconnection: keep-alive');
      expect(calls).toBe(2);
    },
  },
  { name: 'a garbage request line: 400 or closed', request: 'garbage\r\n\r\n', check: refusedOrClosed },
  { name: 'an HTTP/1.1 request without Host: 400 or closed', request: 'GET /health HTTP/1.1\r\n\r\n', check: refusedOrClosed },
];

describe.each(TRANSPORTS.filter((t) => t.skip === null))('HTTP/1.0 and unparseable heads on $name', ({ make, kind }) => {
  const fx = fixture(make);

  it.each(CASES)('$name', async ({ request, check }) => {
    let calls = 0;
    const { addr } = await fx.start((s) =>
      s.route('GET', '/health', () => {
        calls++;
        return { status: 200, json: { ok: true } };
      }),
    );
    if (kind === 'uws') {
      // uWS 20.30 holds these heads as incomplete: no answer, no close, no handler.
      expect(await exchange(addr.port, request, SILENCE_MS)).toEqual({ text: '', closed: false });
      expect(calls).toBe(0);
      return;
    }
    const r = await exchange(addr.port, request, BOUND_MS);
    expect(r.closed).toBe(true);
    check(r.text, calls);
  });
});
