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
});
