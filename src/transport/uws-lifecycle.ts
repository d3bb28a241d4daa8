/**
 * Listening and closing for a uWebSockets.js App, shared by the API server (uws-server.ts) and the balancer's
 * front end (balancer/front-uws.ts): uWS says little about either, so both need the same workarounds.
 */
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { formatPeer } from './dispatch.js';

/** Tries at binding a free port before giving up: losing the race to another process twice in a row is rare. */
const FREE_PORT_ATTEMPTS = 3;

/**
 * Binds with `bind` (uWS binds synchronously: null when the port is taken). uSockets sets SO_REUSEADDR only when
 * given a port: bound to port 0, the connections it accepted would keep the port from being bound again (a
 * restart on the same port) until their TIME_WAIT ends. So port 0 becomes a free port first; another process may
 * take it meanwhile, hence a few tries.
 */
export async function listenUws<T>(host: string, port: number, bind: (host: string, port: number) => T | null): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const p = port === 0 ? await freePort(host) : port;
    const bound = bind(host, p);
    if (bound !== null) return bound;
    if (port !== 0 || attempt === FREE_PORT_ATTEMPTS) throw await listenFailure(host, p);
  }
}

/** A port the kernel says is free on `host` now. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** uWS says only that listening failed; node's net says why (EADDRINUSE, EACCES...), so ask it the same question. */
function listenFailure(host: string, port: number): Promise<Error> {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', (err) => resolve(err));
    probe.listen({ host, port, exclusive: true }, () => {
      probe.close(() => resolve(new Error(`uWebSockets.js could not listen on ${formatPeer(host, port)}`)));
    });
  });
}

/**
 * Closes `app` once what is in flight has finished, or after `graceMs` at the latest. `arm` receives the function
 * that ends the wait: it calls it at once when nothing is in flight, keeps it for when the last request ends, or
 * leaves it (the grace alone decides). The close itself happens on the next turn, so writes corked by a uWS
 * callback we may be inside go out first; then every connection left (idle keep-alive, requests past the grace,
 * WebSockets ignoring the close handshake) is closed at once.
 */
export function closeAfterGrace(app: { close(): void }, graceMs: number, arm: (finish: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      setImmediate(() => {
        app.close();
        resolve();
      });
    };
    const timer = setTimeout(finish, graceMs);
    timer.unref();
    arm(finish);
  });
}
