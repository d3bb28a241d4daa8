/** Ports on 127.0.0.1: picking free ones for programs that need a number up front, and waiting on them. */
import { createConnection, createServer } from 'node:net';

export const HOST = '127.0.0.1';

/** Ports already handed out by this process, so that two programs started together never get the same one. */
const handedOut = new Set<number>();

/**
 * A port the kernel just handed out and we released. nginx and HAProxy need a number in their
 * config; the window for another program to take it before they bind is small, and a lost race
 * shows up as a start-up failure naming the port, not as wrong numbers.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await ephemeralPort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on HOST:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls until HOST:port accepts connections; fails early if `gone()` says the program exited. */
export async function waitForPort(port: number, timeoutMs: number, gone: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await isListening(port)) return;
    const why = gone();
    if (why !== null) throw new Error(why);
    if (Date.now() > deadline) throw new Error(`nothing listening on ${HOST}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
