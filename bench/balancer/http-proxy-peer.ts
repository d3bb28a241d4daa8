/**
 * The Node peer: the `http-proxy` package in front of the backends, in its own process, as it is
 * commonly deployed (`node http-proxy-peer.js 127.0.0.1:8001,127.0.0.1:8002`). Upstream
 * connections go through a keep-alive agent (without one, http-proxy sends `Connection: close` and
 * every request opens a new connection). The package has no balancing of its own; this picks
 * round-robin, the cheapest pick, so the number measures its proxying. Listens on 127.0.0.1:0,
 * prints `{"port":N}`, exits when its stdin closes or on SIGTERM.
 */
import { Agent, type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';

/** Idle upstream sockets kept per backend: the 64 benchmark connections, so none is reopened. */
const MAX_FREE_SOCKETS = 64;

const targets = (process.argv[2] ?? '')
  .split(',')
  .filter(Boolean)
  .map((hp) => {
    const [host, port] = hp.split(':');
    return { host: host!, port: Number(port) };
  });
if (targets.length === 0 || targets.some((t) => !Number.isInteger(t.port) || t.port <= 0)) {
  process.stderr.write('usage: http-proxy-peer HOST:PORT[,HOST:PORT...]\n');
  process.exit(2);
}

const agent = new Agent({ keepAlive: true, maxFreeSockets: MAX_FREE_SOCKETS });
// xfwd: X-Forwarded-For/-Port/-Proto/-Host, as Borealis adds them (it has no Via option).
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
const perTarget = targets.map((target) => ({ target }));
let next = 0;

const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
  const o = perTarget[next]!;
  next = (next + 1) % perTarget.length;
  proxy.web(req, res, o, () => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway\n');
  });
});
srv.keepAliveTimeout = 120_000;
srv.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (srv.address() as AddressInfo).port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
