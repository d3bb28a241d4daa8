/**
 * One HttpServer contract, two servers: every case runs against node:http + ws and against uWebSockets.js, over
 * real sockets on 127.0.0.1, and expects the same answers (statuses, error bodies, headers, frames, close codes).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { binaryName } from '../../src/transport/native.js';
import { ErrorCodes, InvalidArgumentError } from '../../src/api/errors.js';
import type { HttpRequest, WsSocket, WsUpgradeRequest } from '../../src/transport/types.js';
import { type Client, TRANSPORTS, fixture, openWs, raw, refusedWs, waitFor } from './helpers.js';

describe.each(TRANSPORTS)('$name', ({ make, kind, skip }) => {
  if (skip !== null) {
    // Not loading is acceptable only where the package ships no binary for this platform and Node ABI.
    it(`is unavailable here (${skip}) because no binary is shipped for it`, () => {
      expect(existsSync(join(dirname(createRequire(import.meta.url).resolve('uWebSockets.js/package.json')), 'binaries', binaryName()))).toBe(false);
    });
    return;
  }
  const fx = fixture(make);

  describe('HTTP', () => {
    it('reports which transport it is', async () => {
      const { server } = await fx.start(() => undefined);
      expect(server.transport).toBe(kind);
    });

    it('routes by method and path, with decoded params, the query, lower-cased headers and the peer', async () => {
      const seen: HttpRequest[] = [];
      const { base } = await fx.start((s) => {
        s.route('GET', '/v1/jobs/:name/tasks/:id', (req) => {
          seen.push(req);
          return { status: 200, json: { params: req.params, job: req.query.get('job'), all: req.query.getAll('t') } };
        });
        s.route('DELETE', '/v1/jobs/:name', async (req) => ({ status: 202, json: { gone: req.params.name } }));
        s.route('GET', '/text', () => ({ status: 200, text: 'plain', contentType: 'text/plain; version=0.0.4', headers: { 'X-Extra': 'yes' } }));
      });
      const r = await fetch(`${base}/v1/jobs/web%20app/tasks/t.0?job=a%26b&t=1&t=2`, { headers: { 'X-Mixed-Case': 'V' } });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await r.json()).toEqual({ params: { name: 'web app', id: 't.0' }, job: 'a&b', all: ['1', '2'] });
      expect(seen[0]).toMatchObject({ method: 'GET', path: '/v1/jobs/web%20app/tasks/t.0' });
      expect(seen[0].headers['x-mixed-case']).toBe('V');
      expect(seen[0].body.length).toBe(0);
      expect(seen[0].remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);

      const del = await fetch(`${base}/v1/jobs/web`, { method: 'DELETE' });
      expect([del.status, await del.json()]).toEqual([202, { gone: 'web' }]);
      const t = await fetch(`${base}/text`);
      expect([t.status, t.headers.get('content-type'), t.headers.get('x-extra'), await t.text()]).toEqual([200, 'text/plain; version=0.0.4', 'yes', 'plain']);
    });

    it('answers an unknown path 404 and a wrong method 405 with Allow, in the error body shape', async () => {
      const { base } = await fx.start((s) => {
        s.route('POST', '/v1/jobs', () => ({ status: 201, json: {} }));
        s.route('GET', '/v1/jobs', () => ({ status: 200, json: {} }));
      });
      const nf = await fetch(`${base}/v1/nothing`);
      expect([nf.status, await nf.json()]).toEqual([404, { code: ErrorCodes.NOT_FOUND, message: 'no route GET /v1/nothing' }]);
      const na = await fetch(`${base}/v1/jobs`, { method: 'PUT' });
      expect(na.status).toBe(405);
      expect(na.headers.get('allow')).toBe('POST, GET, HEAD');
      expect(await na.json()).toEqual({ code: ErrorCodes.METHOD_NOT_ALLOWED, message: 'PUT is not allowed on /v1/jobs (allowed: POST, GET, HEAD)' });
      // HEAD is answered by the GET route, with the headers and without the body.
      const head = await fetch(`${base}/v1/jobs`, { method: 'HEAD' });
      expect([head.status, head.headers.get('allow'), await head.text()]).toEqual([200, null, '']);
      const after = await fetch(`${base}/v1/jobs`);
      expect(after.status).toBe(200); // the connection HEAD used is still in step
    });

    it('reads bodies whole, declared or chunked, up to the limit', async () => {
      const { base, addr } = await fx.start(
        (s) => s.route('POST', '/echo', (req) => ({ status: 200, json: { n: req.body.length, sum: [...req.body].reduce((a, b) => (a + b) % 65521, 0) } })),
        { bodyLimitBytes: 300_000 },
      );
      const body = Buffer.alloc(300_000, 0);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 251;
      const expected = { n: body.length, sum: [...body].reduce((a, b) => (a + b) % 65521, 0) };
      const r = await fetch(`${base}/echo`, { method: 'POST', body });
      expect([r.status, await r.json()]).toEqual([200, expected]);

      const chunked = raw(addr.port, [
        'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n',
        `5\r\nhello\r\n`,
        `6\r\n world\r\n0\r\n\r\n`,
      ], fx.track);
      const res = await chunked.response;
      expect([res.status, JSON.parse(res.body).n]).toEqual([200, 11]);
    });

    it('refuses a body over the limit with 413 and closes the connection: declared, or as it streams in', async () => {
      const handler = vi.fn(() => ({ status: 200, json: {} }));
      const { base, addr } = await fx.start((s) => s.route('POST', '/v1/jobs', handler), { bodyLimitBytes: 1024 });
      const atLimit = await fetch(`${base}/v1/jobs`, { method: 'POST', body: 'x'.repeat(1024) });
      expect(atLimit.status).toBe(200);

      const declared = await fetch(`${base}/v1/jobs`, { method: 'POST', body: 'x'.repeat(1025) });
      expect(declared.status).toBe(413);
      expect(declared.headers.get('connection')).toBe('close');
      expect(await declared.json()).toEqual({ code: ErrorCodes.PAYLOAD_TOO_LARGE, message: 'request body exceeds the limit of 1024 bytes' });

      const chunk = `400\r\n${'y'.repeat(1024)}\r\n`;
      const streamed = raw(addr.port, ['POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', chunk, chunk, '0\r\n\r\n'], fx.track);
      const res = await streamed.response;
      expect([res.status, res.headers.connection, JSON.parse(res.body).code]).toEqual([413, 'close', ErrorCodes.PAYLOAD_TOO_LARGE]);
      expect(await streamed.closed).toBe('closed');

      // Past the discard bound the connection is simply cut, and the server carries on.
      const huge = raw(addr.port, ['POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', ...Array<string>(12).fill(chunk)], fx.track);
      await huge.closed;
      expect(handler).toHaveBeenCalledTimes(1);
      expect((await fetch(`${base}/v1/jobs`, { method: 'POST', body: '{}' })).status).toBe(200);
    });

    it('turns a handler that throws into 500 (reported) or its BorealisError, and keeps serving', async () => {
      const onInternalError = vi.fn();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const { base } = await fx.start(
        (s) => {
          s.route('GET', '/bug', () => {
            throw new Error('bug');
          });
          s.route('GET', '/bug-async', async () => {
            throw new TypeError('async bug');
          });
          s.route('GET', '/cyclic', () => ({ status: 200, json: cyclic }));
          s.route('POST', '/refused', () => {
            throw new InvalidArgumentError('bad', [{ path: 'spec.x', message: 'must be y' }]);
          });
        },
        { onInternalError },
      );
      for (const p of ['/bug', '/bug-async', '/cyclic']) {
        const r = await fetch(`${base}${p}`);
        expect([r.status, await r.json()], p).toEqual([500, { code: ErrorCodes.INTERNAL, message: 'internal error' }]);
      }
      expect(onInternalError.mock.calls.map(([err, where]) => [(err as Error).constructor.name, where])).toEqual([
        ['Error', { method: 'GET', path: '/bug' }],
        ['TypeError', { method: 'GET', path: '/bug-async' }],
        ['TypeError', { method: 'GET', path: '/cyclic' }],
      ]);
      const r = await fetch(`${base}/refused`, { method: 'POST', body: '{}' });
      expect([r.status, await r.json()]).toEqual([400, { code: ErrorCodes.INVALID_ARGUMENT, message: 'bad', problems: [{ path: 'spec.x', message: 'must be y' }] }]);
      expect(onInternalError).toHaveBeenCalledTimes(3);
    });
  });

  describe('WebSocket', () => {
    const echo = (opened: WsSocket[] = []) => ({
      protocols: ['borealis.v1.protobuf', 'borealis.v1.json'],
      maxPayloadBytes: 1024,
      onOpen: (socket: WsSocket) => {
        opened.push(socket);
        socket.onMessage((bytes, isBinary) => (isBinary ? socket.send(bytes) : socket.sendText(Buffer.from(bytes).toString('utf8'))));
      },
    });

    it('selects the server-preferred subprotocol among those offered, and refuses 400 when none matches', async () => {
      const { addr } = await fx.start((s) => s.websocket('/v1/events', echo()));
      const url = `ws://127.0.0.1:${addr.port}/v1/events`;
      const both = await openWs(url, ['x.other', 'borealis.v1.json', 'borealis.v1.protobuf'], fx.track);
      expect(both.ws.protocol).toBe('borealis.v1.protobuf');
      const json = await openWs(url, 'borealis.v1.json', fx.track);
      expect(json.ws.protocol).toBe('borealis.v1.json');
      expect(await refusedWs(url, 'borealis.v2.xml', fx.track)).toEqual({
        status: 400,
        body: { code: ErrorCodes.PROTOCOL, message: 'subprotocol must be one of borealis.v1.protobuf, borealis.v1.json (offered: borealis.v2.xml)' },
      });
      expect(await refusedWs(url, undefined, fx.track)).toMatchObject({ status: 400, body: { code: ErrorCodes.PROTOCOL, message: expect.stringContaining('(offered: none)') } });
      expect(await refusedWs(`ws://127.0.0.1:${addr.port}/v1/elsewhere`, 'borealis.v1.json', fx.track)).toEqual({
        status: 404,
        body: { code: ErrorCodes.NOT_FOUND, message: 'no WebSocket endpoint at /v1/elsewhere' },
      });
      // A plain GET of the endpoint is an HTTP request like any other: no route.
      expect((await fetch(`http://127.0.0.1:${addr.port}/v1/events`)).status).toBe(404);
    });

    it('lets accept() refuse with its error status and body before the handshake, and sees the query', async () => {
      const onInternalError = vi.fn();
      const onOpen = vi.fn();
      const accepted: WsUpgradeRequest[] = [];
      const { addr } = await fx.start(
        (s) =>
          s.websocket('/v1/events', {
            protocols: ['p'],
            accept: (req) => {
              if (req.query.get('since') === 'bad') throw new InvalidArgumentError('since must be a whole number');
              if (req.query.has('bug')) throw new Error('bug');
              accepted.push(req);
            },
            onOpen,
          }),
        { onInternalError },
      );
      const url = `ws://127.0.0.1:${addr.port}/v1/events`;
      expect(await refusedWs(`${url}?since=bad`, 'p', fx.track)).toEqual({ status: 400, body: { code: ErrorCodes.INVALID_ARGUMENT, message: 'since must be a whole number' } });
      expect(await refusedWs(`${url}?bug`, 'p', fx.track)).toEqual({ status: 500, body: { code: ErrorCodes.INTERNAL, message: 'internal error' } });
      expect(onInternalError).toHaveBeenCalledTimes(1);
      expect(onOpen).not.toHaveBeenCalled();
      await openWs(`${url}?since=7&job=a%20b`, 'p', fx.track);
      expect(accepted[0].path).toBe('/v1/events');
      expect([accepted[0].query.get('since'), accepted[0].query.get('job'), accepted[0].headers['sec-websocket-protocol']]).toEqual(['7', 'a b', 'p']);
      await waitFor(() => onOpen.mock.calls.length === 1, 'onOpen');
      const [socket, req] = onOpen.mock.calls[0] as [WsSocket, WsUpgradeRequest];
      expect([socket.protocol, req.query.get('since')]).toEqual(['p', '7']);
      expect(socket.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    });

    it('carries binary and text frames both ways, in order, and says which is which', async () => {
      const { addr } = await fx.start((s) => s.websocket('/ws', echo()));
      const c = await openWs(`ws://127.0.0.1:${addr.port}/ws`, 'borealis.v1.protobuf', fx.track);
      const frames: (Buffer | string)[] = [];
      for (let i = 0; i < 50; i++) frames.push(i % 3 === 0 ? `text ${i} é` : Buffer.from([i, 0, 255, i]));
      for (const f of frames) c.ws.send(f);
      await waitFor(() => c.messages.length === frames.length, 'every echo');
      expect(c.messages.map((m) => (m.isBinary ? [...m.data] : m.data.toString('utf8')))).toEqual(frames.map((f) => (typeof f === 'string' ? f : [...f])));
    });

    it('closes with 1009 on a frame over maxPayloadBytes, and keeps serving other sockets', async () => {
      const opened: WsSocket[] = [];
      const closes: number[] = [];
      const { addr } = await fx.start((s) =>
        s.websocket('/ws', {
          ...echo(opened),
          onOpen: (socket) => {
            echo(opened).onOpen(socket);
            socket.onClose((code) => closes.push(code));
          },
        }),
      );
      const url = `ws://127.0.0.1:${addr.port}/ws`;
      const other = await openWs(url, 'borealis.v1.json', fx.track);
      const big = await openWs(url, 'borealis.v1.json', fx.track);
      big.ws.send(Buffer.alloc(1024)); // at the limit: fine
      await waitFor(() => big.messages.length === 1, 'the echo at the limit');
      big.ws.send(Buffer.alloc(1025));
      expect((await big.closed).code).toBe(1009);
      // (The code the server side reports is the one its peer echoed, or 1006 when it stopped reading: not pinned.)
      await waitFor(() => closes.length === 1, 'the server-side close');
      other.ws.send('still here');
      await waitFor(() => other.messages.length === 1, 'the other socket');
    });

    it('closes with the code and reason asked, fires onClose once (whoever closed), and ignores send after close', async () => {
      const sockets: WsSocket[] = [];
      const closes: { code: number; reason: string }[][] = [];
      const { addr } = await fx.start((s) =>
        s.websocket('/ws', {
          protocols: ['p'],
          onOpen: (socket) => {
            const mine: { code: number; reason: string }[] = [];
            closes.push(mine);
            sockets.push(socket);
            socket.onClose((code, reason) => mine.push({ code, reason }));
          },
        }),
      );
      const url = `ws://127.0.0.1:${addr.port}/ws`;
      const a = await openWs(url, 'p', fx.track);
      await waitFor(() => sockets.length === 1, 'the server socket');
      let inside = true;
      let firedInside = false;
      let writtenAfterClose = false;
      sockets[0].onClose(() => (firedInside ||= inside)); // never inside close() itself, as with ws
      sockets[0].close(4002, 'declared lost');
      inside = false;
      sockets[0].close(4003, 'again'); // no-op
      sockets[0].send(new Uint8Array([1])); // no-op
      sockets[0].sendText('x', () => (writtenAfterClose = true));
      expect(await a.closed).toEqual({ code: 4002, reason: 'declared lost' });
      await waitFor(() => closes[0].length === 1, 'onClose');
      expect([firedInside, writtenAfterClose]).toEqual([false, false]);

      const b = await openWs(url, 'p', fx.track);
      await waitFor(() => sockets.length === 2, 'the second server socket');
      b.ws.close(4000, 'bye');
      await b.closed;
      await waitFor(() => closes[1].length === 1, 'onClose on a client close');

      const c = await openWs(url, 'p', fx.track);
      await waitFor(() => sockets.length === 3, 'the third server socket');
      c.ws.terminate(); // no close frame: abnormal closure
      await waitFor(() => closes[2].length === 1, 'onClose on a dropped connection');

      await new Promise((r) => setTimeout(r, 20));
      expect(closes).toEqual([[{ code: 4002, reason: 'declared lost' }], [{ code: 4000, reason: 'bye' }], [{ code: 1006, reason: '' }]]);
      expect(sockets[0].bufferedAmount).toBe(0);
    });

    it('counts bytes not yet in the kernel in bufferedAmount, and runs onWritten only once a frame is written', async () => {
      const sockets: WsSocket[] = [];
      const { addr } = await fx.start((s) => s.websocket('/ws', { protocols: ['p'], onOpen: (socket) => void sockets.push(socket) }));
      const c = await openWs(`ws://127.0.0.1:${addr.port}/ws`, 'p', fx.track);
      await waitFor(() => sockets.length === 1, 'the server socket');
      const s = sockets[0];
      const first = await new Promise<number>((resolve) => s.send(new Uint8Array(10), () => resolve(s.bufferedAmount)));
      expect(first).toBe(0);

      // A reader that stops reading: the kernel's buffers fill, then the server's own.
      const tcp = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
      tcp.pause();
      const frame = new Uint8Array(64 * 1024);
      let sent = 0;
      let written = 0;
      while (s.bufferedAmount === 0 && sent < 2_000) {
        s.send(frame, () => written++);
        sent++;
      }
      expect(s.bufferedAmount).toBeGreaterThan(0);
      let lastWritten = false;
      s.send(frame, () => (lastWritten = true));
      // While the server still holds bytes, the last frame cannot be in the kernel.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(s.bufferedAmount).toBeGreaterThan(0);
      expect(lastWritten).toBe(false);
      tcp.resume();
      await waitFor(() => lastWritten, 'onWritten of the last frame');
      expect(written).toBe(sent);
      await waitFor(() => c.messages.length === sent + 2, 'every frame at the client');
      expect(s.bufferedAmount).toBe(0);
    });
  });

  describe('close()', () => {
    it('closes WebSockets with 1001, idle keep-alive connections and the listener, and is idempotent', async () => {
      const closes: number[] = [];
      const { server, addr } = await fx.start((s) => {
        s.route('GET', '/health', () => ({ status: 200, json: { status: 'ok' } }));
        s.websocket('/ws', { protocols: ['p'], onOpen: (socket) => socket.onClose((code) => closes.push(code)) });
      });
      const clients: Client[] = [];
      for (let i = 0; i < 3; i++) clients.push(await openWs(`ws://127.0.0.1:${addr.port}/ws`, 'p', fx.track));
      const keepAlive = raw(addr.port, ['GET /health HTTP/1.1\r\nHost: x\r\n\r\n'], fx.track);
      expect((await keepAlive.response).status).toBe(200);

      const closing = server.close();
      const again = server.close();
      await Promise.all([closing, again]);
      for (const c of clients) expect(await c.closed).toEqual({ code: 1001, reason: 'server closing' });
      expect(await keepAlive.closed).toBe('closed');
      await waitFor(() => closes.length === 3, 'every onClose');
      expect(closes).toEqual([1001, 1001, 1001]);
      await expect(fetch(`http://127.0.0.1:${addr.port}/health`)).rejects.toThrow();
      await server.close();
    });

    it('lets a request in flight finish (closing its connection), then stops', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const { server, addr } = await fx.start((s) =>
        s.route('GET', '/slow', async () => {
          await gate;
          return { status: 200, json: { done: true } };
        }),
      );
      const slow = raw(addr.port, ['GET /slow HTTP/1.1\r\nHost: x\r\n\r\n'], fx.track);
      await new Promise((r) => setTimeout(r, 20)); // the request is in the handler
      let closed = false;
      const closing = server.close().then(() => (closed = true));
      release();
      const res = await slow.response;
      expect([res.status, JSON.parse(res.body)]).toEqual([200, { done: true }]);
      await closing;
      expect(closed).toBe(true);
      expect(await slow.closed).toBe('closed');
    });

    it('refuses to bind a port another server holds, and binds it again once that server is closed', async () => {
      const { server, addr } = await fx.start(() => undefined);
      const second = make();
      await expect(second.listen({ host: '127.0.0.1', port: addr.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      await second.close();
      // Connections the first server accepted (and closed first) linger in TIME_WAIT: the port must still be reusable.
      const c = raw(addr.port, ['GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], fx.track);
      await c.closed;
      await server.close();
      const third = make();
      try {
        expect((await third.listen({ host: '127.0.0.1', port: addr.port })).port).toBe(addr.port);
      } finally {
        await third.close();
      }
    });
  });
});
