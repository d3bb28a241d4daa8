/** Local node:http targets on 127.0.0.1:0 for the loadgen suites; every one is closed after each test. */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

export interface Target {
  server: Server;
  url: string;
  port: number;
  /** Requests seen (counted when their body has arrived). */
  readonly count: number;
  /** Distinct client connections seen. */
  readonly sockets: number;
}

type Handle = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** Starts servers whose handler runs once each request's body is in; all of them close (connections too) after each test. */
export function targets(): { start: (handle: Handle) => Promise<Target>; closedPort: () => Promise<number> } {
  const open: Server[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
  return {
    start: async (handle) => {
      let count = 0;
      const seen = new WeakSet<object>();
      let sockets = 0;
      const server = createServer((req, res) => {
        if (!seen.has(req.socket)) {
          seen.add(req.socket);
          sockets++;
        }
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          count++;
          handle(req, res, Buffer.concat(chunks));
        });
      });
      open.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as AddressInfo).port;
      return {
        server,
        port,
        url: `http://127.0.0.1:${port}/`,
        get count() {
          return count;
        },
        get sockets() {
          return sockets;
        },
      };
    },
    /** A port that was just listening and is now closed: connecting to it is refused. */
    closedPort: async () => {
      const s = createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      const port = (s.address() as AddressInfo).port;
      await new Promise<void>((r) => s.close(() => r()));
      return port;
    },
  };
}

export const ok: Handle = (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello\n');
