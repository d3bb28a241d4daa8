import type { Master } from '../master/index.js';
import { type HttpServer, type HttpServerOptions, type ListenAddress, createHttpServer, formatAddress } from '../transport/index.js';
import { registerRoutes } from './routes.js';

export interface ApiServer {
  readonly server: HttpServer;
  readonly address: ListenAddress;
  /** `http://host:port` */
  readonly url: string;
  /** Stops the HTTP server (not the master). */
  close(): Promise<void>;
}

/** The master's HTTP API and agent endpoint, listening on `listen` (port 0 picks a free one). */
export async function startApiServer(master: Master, listen: ListenAddress, opts: HttpServerOptions = {}): Promise<ApiServer> {
  const server = createHttpServer(opts);
  registerRoutes(server, master);
  const address = await server.listen(listen);
  return { server, address, url: `http://${formatAddress(address)}`, close: () => server.close() };
}
