export { NodeHttpServer } from './node-server.js';
export { UwsHttpServer } from './uws-server.js';
export { Router } from './router.js';
export { LISTEN_ENV, formatAddress, parseListen, resolveListen } from './listen.js';
export { NATIVE_ENV, chooseTransport, loadNative, nativeMode, transportName } from './native.js';
export type { NativeLoad, NativeMode, TransportChoice } from './native.js';
export { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_LISTEN } from './types.js';
export type * from './types.js';

import { chooseTransport } from './native.js';
import { NodeHttpServer } from './node-server.js';
import type { HttpServer, HttpServerOptions } from './types.js';
import { UwsHttpServer } from './uws-server.js';

/**
 * The server for `opts.transport` (default `auto`: uWebSockets.js when its native binary loads, else `node:http`;
 * see native.ts for $BOREALIS_NATIVE). `server.transport` says which one it is; chooseTransport() gives the
 * same decision with a line to log.
 */
export function createHttpServer(opts: HttpServerOptions = {}, env: NodeJS.ProcessEnv = process.env): HttpServer {
  const choice = chooseTransport(opts.transport ?? 'auto', env);
  return choice.uws !== null ? new UwsHttpServer(choice.uws, opts) : new NodeHttpServer(opts);
}
