export { NodeHttpServer } from './node-server.js';
export { Router } from './router.js';
export { LISTEN_ENV, formatAddress, parseListen, resolveListen } from './listen.js';
export { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_LISTEN } from './types.js';
export type * from './types.js';

import { NodeHttpServer } from './node-server.js';
import type { HttpServer, HttpServerOptions } from './types.js';

/** The server to use: `node:http` + `ws` today; uWebSockets.js, when present, in a later issue. */
export function createHttpServer(opts: HttpServerOptions = {}): HttpServer {
  return new NodeHttpServer(opts);
}
