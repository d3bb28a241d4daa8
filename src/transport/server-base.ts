import { Dispatcher } from './dispatch.js';
import type { HttpHandler, HttpMethod, HttpServer, HttpServerOptions, ListenAddress, TransportKind, WsRoute } from './types.js';

/**
 * What the two servers share besides dispatch.ts: the dispatcher, route registration, and close() run once
 * (every later call gets the same promise), so each server only writes how it shuts down.
 */
export abstract class ServerBase implements HttpServer {
  abstract readonly transport: TransportKind;
  abstract readonly address: ListenAddress | null;
  protected readonly dispatcher: Dispatcher;
  #closing = false;
  #closed: Promise<void> | null = null;

  constructor(opts: HttpServerOptions) {
    this.dispatcher = new Dispatcher(opts);
  }

  route(method: HttpMethod, path: string, handler: HttpHandler): void {
    this.dispatcher.add(method, path, handler);
  }

  abstract websocket(path: string, route: WsRoute): void;
  abstract listen(address: ListenAddress): Promise<ListenAddress>;

  /** Once close() has been called: upgrades are refused (503) and answers close their connections. */
  protected get closing(): boolean {
    return this.#closing;
  }

  close(): Promise<void> {
    if (this.#closed === null) {
      this.#closing = true; // before shutdown() runs: it may reach code that asks
      this.#closed = this.shutdown();
    }
    return this.#closed;
  }

  /** Stops accepting, closes WebSockets (1001) and connections; resolves when done. Called once. */
  protected abstract shutdown(): Promise<void>;
}
