/**
 * Backends for the balancing-quality runs, as one child process: `node counting-backend.js 0,0,0,20`
 * listens on one port per listed delay (ms before answering) and prints `{"ports":[...]}`.
 * Each counts the requests it answered; `GET /__count` (asked directly, not through the proxy)
 * returns `{"count":N}`. One process serves all four, so equal backends are equal by construction;
 * the delay is a timer, so the slow one costs no CPU. Exits when its stdin closes (the harness
 * went away) or on SIGTERM.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const COUNT_PATH = '/__count';
const BODY = 'hello from a counting backend\n';
/** Longer than any proxy's idle timeout, so pooled upstream connections are never closed under them. */
const KEEP_ALIVE_MS = 120_000;

const delays = (process.argv[2] ?? '').split(',').filter(Boolean).map(Number);
if (delays.length === 0 || delays.some((d) => !Number.isFinite(d) || d < 0)) {
  process.stderr.write('usage: counting-backend DELAY_MS[,DELAY_MS...]\n');
  process.exit(2);
}

function serve(delayMs: number): Promise<number> {
  let count = 0;
  const answer = (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  };
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === COUNT_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ count }));
      return;
    }
    count++;
    if (delayMs > 0) setTimeout(answer, delayMs, res);
    else answer(res);
  });
  srv.keepAliveTimeout = KEEP_ALIVE_MS;
  srv.headersTimeout = KEEP_ALIVE_MS + 1000;
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve((srv.address() as AddressInfo).port));
  });
}

const ports = await Promise.all(delays.map(serve));
process.stdout.write(`${JSON.stringify({ ports })}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
