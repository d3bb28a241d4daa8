/** dispatch.ts: what both servers share and cannot differ on. */
import { describe, expect, it } from 'vitest';
import { offeredProtocols, parseTarget } from '../../src/transport/dispatch.js';

describe('parseTarget', () => {
  it('gives exactly what WHATWG URL gives, on plain and tricky targets alike', () => {
    const viaUrl = (t: string): { path: string; query: [string, string][] } => {
      const u = new URL(t, 'http://localhost');
      return { path: u.pathname, query: [...u.searchParams] };
    };
    const targets = [
      '/', '/v1/jobs', '/v1/tasks/web.0.1', '/v1/tasks?job=web', '/v1/tasks?job=', '/x?',
      // dot segments, plain and escaped; dots that are not segments
      '/a/./b', '/a/../b', '/a/..', '/a/.', '/..', '/a/.b/..c/...', '/a/%2e%2e/b', '/a/%2E/b',
      // characters URL re-encodes, escapes it keeps, an authority-looking start, backslashes
      '/a b', '/é', '/a%20b', '/a%zz', '//a//b', '/a\\b', '/a|b', '/a"b', '/a{b}',
      // queries: plus, escapes, repeats, bare keys, a second "?", characters URL re-encodes, a fragment
      '/x?q=a+b&r=%20&s', '/x?a=1&a=2&b', '/x??a=1', '/x?a=?b', '/x?a=%zz', '/x?q=a b', '/x?a="b"', "/x?a='b'", '/x?a=<b>', '/x?é=1', '/x?a=1#frag',
    ];
    for (const t of targets) {
      const p = parseTarget(t);
      expect({ path: p.path, query: [...p.query] }, t).toEqual(viaUrl(t));
    }
  });
});

describe('offeredProtocols', () => {
  it('splits Sec-WebSocket-Protocol on commas, trimming and dropping empties, in the client order', () => {
    expect(offeredProtocols(undefined)).toEqual([]);
    expect(offeredProtocols('')).toEqual([]);
    expect(offeredProtocols(' b.v1 ,a.v1,, ')).toEqual(['b.v1', 'a.v1']);
  });
});
