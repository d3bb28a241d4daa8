import type { EventStream } from '../events/stream.js';
import type { Master } from '../master/index.js';
import { type HttpServer, type HttpServerOptions, type ListenAddress, createHttpServer, formatAddress } from '../transport/index.js';
import { type RouteOptions, registerRoutes } from './routes.js';

export interface ApiServer {
  readonly server: HttpServer;
  readonly address: ListenAddress;
  /** `http://host:port` */
  readonly url: string;
  /** GET /v1/events' subscriptions. */
  readonly events: EventStream;
  /** Stops the HTTP server (not the master). */
  close(): Promise<void>;
}

/** The master's HTTP API and agent endpoint, listening on `listen` (port 0 picks a free one). */
export async function startApiServer(master: Master, listen: ListenAddress, opts: HttpServerOptions & RouteOptions = {}): Promise<ApiServer> {
  const { events: eventOpts, ...httpOpts } = opts;
  const server = createHttpServer(httpOpts);
  const events = registerRoutes(server, master, eventOpts === undefined ? {} : { events: eventOpts });
  const address = await server.listen(listen);
  return {
    server,
    address,
    url: `http://${formatAddress(address)}`,
    events,
    close: () => {
      events.close();
      return server.close();
    },
  };
}
