import { type Socket, connect } from 'node:net';
import { afterEach } from 'vitest';
import WebSocket from 'ws';
import { loadNative } from '../../src/transport/native.js';
import { NodeHttpServer } from '../../src/transport/node-server.js';
import type { HttpServer, HttpServerOptions, ListenAddress, TransportKind } from '../../src/transport/types.js';
import { UwsHttpServer } from '../../src/transport/uws-server.js';

/**
 * Both servers, for describe.each. The native one is loaded in auto mode whatever $BOREALIS_NATIVE says (this
 * suite is about the two servers, not about the switch); it is skipped, with the reason in the test name, only
 * when the binary cannot load here.
 */
const native = loadNative({});
export const TRANSPORTS: { name: string; kind: TransportKind; make: (o?: HttpServerOptions) => HttpServer; skip: string | null }[] = [
  { name: 'node:http + ws', kind: 'node', make: (o) => new NodeHttpServer(o), skip: null },
  {
    name: 'uWebSockets.js',
    kind: 'uws',
    make: (o) => new UwsHttpServer(native.uws!, o),
    skip: native.uws === null ? `uWebSockets.js did not load: ${native.reason}` : null,
  },
];

/** Polls until `predicate` holds; fails naming `what`. */
export async function waitFor<T>(predicate: () => T | false | undefined | null, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Servers, WebSocket clients and raw sockets opened by a test, all closed after it. */
export function fixture(make: (o?: HttpServerOptions) => HttpServer): {
  start: (setup: (s: HttpServer) => void, o?: HttpServerOptions) => Promise<{ server: HttpServer; addr: ListenAddress; base: string }>;
  track: <T extends WebSocket | Socket>(c: T) => T;
} {
  const servers: HttpServer[] = [];
  const clients: (WebSocket | Socket)[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) {
      if (c instanceof WebSocket) c.terminate();
      else c.destroy();
    }
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  return {
    start: async (setup, o) => {
      const server = make(o);
      servers.push(server);
      setup(server);
      const addr = await server.listen({ host: '127.0.0.1', port: 0 });
      return { server, addr, base: `http://127.0.0.1:${addr.port}` };
    },
    track: (c) => {
      clients.push(c);
      return c;
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `parts` on a fresh TCP connection (a pause between parts) and reads one response; `closed` resolves
 * when the server closes the connection. For what fetch hides: chunked uploads, Connection headers, resets.
 */
export function raw(port: number, parts: (string | Buffer)[], track: (s: Socket) => Socket): { response: Promise<RawResponse>; closed: Promise<'closed' | 'reset'>; socket: Socket } {
  const socket = track(connect(port, '127.0.0.1'));
  let buf = Buffer.alloc(0);
  let resolveResponse: (r: RawResponse) => void;
  let rejectResponse: (e: Error) => void;
  const response = new Promise<RawResponse>((res, rej) => {
    resolveResponse = res;
    rejectResponse = rej;
  });
  response.catch(() => undefined); // a test that expects a cut connection awaits `closed` only
  const closed = new Promise<'closed' | 'reset'>((resolve) => {
    socket.on('error', () => resolve('reset'));
    socket.on('close', () => {
      resolve('closed');
      rejectResponse(new Error(`connection closed before a whole response (${buf.length} bytes)`));
    });
  });
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (buf.length - end - 4 < length) return;
    resolveResponse({ status: Number(statusLine.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + length).toString('utf8') });
  });
  socket.once('connect', async () => {
    for (const [i, p] of parts.entries()) {
      if (i > 0) await new Promise((r) => setTimeout(r, 5));
      if (!socket.destroyed) socket.write(p);
    }
  });
  return { response, closed, socket };
}

/** An open client WebSocket with every message it got and how it closed. */
export interface Client {
  ws: WebSocket;
  messages: { data: Buffer; isBinary: boolean }[];
  closed: Promise<{ code: number; reason: string }>;
}

export async function openWs(url: string, protocols: string | string[], track: (w: WebSocket) => WebSocket): Promise<Client> {
  const ws = track(new WebSocket(url, protocols, { perMessageDeflate: false }));
  const c: Client = {
    ws,
    messages: [],
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
  };
  ws.on('message', (data: Buffer, isBinary) => c.messages.push({ data, isBinary }));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return c;
}

/** An upgrade the server should refuse: its status and error body. */
export function refusedWs(url: string, protocols: string | string[] | undefined, track: (w: WebSocket) => WebSocket): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const ws = track(protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols));
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
  });
}
