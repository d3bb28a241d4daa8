import type { EventStream } from '../events/stream.js';
import type { Master } from '../master/index.js';
import { type HttpServer, type HttpServerOptions, type ListenAddress, chooseTransport, createHttpServer, formatAddress } from '../transport/index.js';
import { type RouteOptions, registerRoutes } from './routes.js';

export interface ApiServer {
  readonly server: HttpServer;
  /** Which transport serves it and why, one line for the log (`transport: uWebSockets.js 20.30.0 (native)`). */
  readonly transport: string;
  readonly address: ListenAddress;
  /** `http://host:port` */
  readonly url: string;
  /** GET /v1/events' subscriptions. */
  readonly events: EventStream;
  /** Stops the HTTP server (not the master). */
  close(): Promise<void>;
}

/**
 * The master's HTTP API and agent endpoint, listening on `listen` (port 0 picks a free one), on the transport
 * `opts.transport` asks for (default: uWebSockets.js when it loads natively; see src/transport/native.ts).
 */
export async function startApiServer(master: Master, listen: ListenAddress, opts: HttpServerOptions & RouteOptions = {}): Promise<ApiServer> {
  const { events: eventOpts, ...httpOpts } = opts;
  const transport = chooseTransport(httpOpts.transport ?? 'auto').description;
  const server = createHttpServer(httpOpts);
  const events = registerRoutes(server, master, eventOpts === undefined ? {} : { events: eventOpts });
  const address = await server.listen(listen);
  return {
    server,
    transport,
    address,
    url: `http://${formatAddress(address)}`,
    events,
    close: () => {
      events.close();
      return server.close();
    },
  };
}
