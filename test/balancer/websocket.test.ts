/** WebSocket upgrades through each front end: echoed end to end, active on the endpoint until closed; refusals forwarded. */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { FRONT_ENDS, balancerFixture, waitFor } from './helpers.js';

describe.each(FRONT_ENDS)('WebSockets through the %s front end', (front) => {
  const fx = balancerFixture();

  it('proxies an echo session and counts it active until it closes', async () => {
    const backend = await fx.backend('ws');
    const wss = new WebSocketServer({ noServer: true });
    const seen: Record<string, string | string[] | undefined>[] = [];
    backend.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (req.url !== '/chat') {
        socket.end('HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 10\r\n\r\nno chat\r\n');
        return;
      }
      seen.push(req.headers);
      wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m, binary) => ws.send(binary ? m : `echo:${m.toString()}`)));
    });
    fx.onCleanup(() => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    });
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'ws', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    const slot = bal.registry.byId.get('ws')!.slot;

    const client = new WebSocket(`${bal.url.replace('http', 'ws')}/chat`, ['chat.v1']);
    fx.onCleanup(() => client.terminate());
    await new Promise((resolve, reject) => {
      client.once('open', resolve);
      client.once('error', reject);
    });
    expect(client.protocol).toBe('chat.v1');
    const replies: string[] = [];
    client.on('message', (m) => replies.push(m.toString()));
    client.send('hello');
    client.send('world');
    await waitFor(() => replies.length === 2, 'two echoes');
    expect(replies).toEqual(['echo:hello', 'echo:world']);
    expect(seen[0]).toMatchObject({ 'x-forwarded-for': '127.0.0.1', via: '1.1 borealis', 'sec-websocket-protocol': 'chat.v1', upgrade: 'websocket' });
    expect(bal.registry.table.active[slot]).toBe(1);
    expect(await bal.metrics.registry.metrics()).toContain('borealis_balancer_active{service="static",endpoint="ws"} 1');

    client.close(1000, 'bye');
    await waitFor(() => bal.registry.table.active[slot] === 0, 'the session to end on the endpoint');

    // The path goes upstream in the normal form it was routed by (%63 is an encoded "c").
    const encoded = new WebSocket(`${bal.url.replace('http', 'ws')}/%63hat`);
    fx.onCleanup(() => encoded.terminate());
    await new Promise((resolve, reject) => {
      encoded.once('open', resolve);
      encoded.once('error', reject);
    });
    encoded.close(1000, 'bye');
    await waitFor(() => bal.registry.table.active[slot] === 0, 'the second session to end');

    // An upgrade the endpoint refuses comes back as its response.
    const refused = new WebSocket(`${bal.url.replace('http', 'ws')}/nope`);
    fx.onCleanup(() => refused.terminate());
    const status = await new Promise<number>((resolve) => {
      refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      refused.once('error', () => resolve(-1));
    });
    expect(status).toBe(404);
    await waitFor(() => bal.registry.table.active[slot] === 0, 'the refused upgrade to end');
  });

  it('keeps binary and text apart and passes close codes both ways', async () => {
    const backend = await fx.backend('ws');
    const wss = new WebSocketServer({ noServer: true });
    const closes: [number, string][] = [];
    backend.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (m, binary) => {
          if (!binary && m.toString() === 'close please') ws.close(4001, 'asked to');
          else ws.send(m, { binary });
        });
        ws.on('close', (code, reason) => closes.push([code, reason.toString()]));
      });
    });
    fx.onCleanup(() => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    });
    const bal = await fx.balancer(front, { feed: { static: [{ id: 'ws', host: '127.0.0.1', port: backend.port, weight: 1 }] } });
    const slot = bal.registry.byId.get('ws')!.slot;
    const open = async (): Promise<WebSocket> => {
      const c = new WebSocket(`${bal.url.replace('http', 'ws')}/x`);
      fx.onCleanup(() => c.terminate());
      await new Promise((resolve, reject) => {
        c.once('open', resolve);
        c.once('error', reject);
      });
      return c;
    };

    const c1 = await open();
    const got: [boolean, string][] = [];
    c1.on('message', (m, binary) => got.push([binary, binary ? (m as Buffer).toString('hex') : m.toString()]));
    c1.send(Buffer.from([0, 1, 2, 255]));
    c1.send('text');
    await waitFor(() => got.length === 2, 'two echoes');
    expect(got).toEqual([[true, '000102ff'], [false, 'text']]);
    // The endpoint closes with its code: the client gets it.
    const fromEndpoint = new Promise<[number, string]>((resolve) => c1.once('close', (code, reason) => resolve([code, reason.toString()])));
    c1.send('close please');
    expect(await fromEndpoint).toEqual([4001, 'asked to']);

    // The client closes with its code: the endpoint gets it.
    const c2 = await open();
    c2.close(4002, 'client done');
    await waitFor(() => closes.some(([code]) => code === 4002), 'the endpoint to see the close');
    expect(closes.find(([code]) => code === 4002)).toEqual([4002, 'client done']);
    await waitFor(() => bal.registry.table.active[slot] === 0, 'both sessions to end');
  });
});
