/**
 * The contract between a front end (node:http today, uWebSockets.js next) and the transport-neutral request
 * lifecycle in proxy.ts. A front end wraps each client request in a Downstream; the proxy attaches a
 * DownstreamSink to it and drives the response through it. Everything is callback-based (no promises, no
 * closures per request on the proxy's side), so a front end can implement it with one object per request.
 */

/** What the proxy calls on a front end's request. */
export interface Downstream {
  readonly method: string;
  /** The request target as received (path and query). */
  readonly target: string;
  /** Header fields as received, `[name, value, name, value, ...]`, names in their original case. */
  readonly rawHeaders: readonly string[];
  /** The client's IP (for X-Forwarded-For). */
  readonly remoteAddress: string;
  /** `http` or `https`, as the client connected (for X-Forwarded-Proto). */
  readonly scheme: string;

  /**
   * Binds the sink: from now on the front end reports body chunks, the end of the body, drain after a refused
   * write, and the client going away, to it. The body does not flow until resumeBody().
   */
  attach(sink: DownstreamSink): void;
  /** Stops delivering body chunks (backpressure from the endpoint). */
  pauseBody(): void;
  /** (Re)starts delivering body chunks. */
  resumeBody(): void;

  /** Status and headers (`[name, value, ...]`, hop-by-hop already removed). Called at most once. */
  writeHead(status: number, headers: readonly string[]): void;
  /** Writes body bytes; false means "buffer full: wait for sink.onDownstreamDrain() before writing more". */
  write(chunk: Uint8Array): boolean;
  /** The response is complete. */
  end(): void;
  /**
   * The response cannot be completed (the endpoint failed mid-body): close the client's connection so it sees a
   * truncated response rather than a short one that looks complete.
   */
  abort(): void;
  /** Whether writeHead was called (the status is on its way: no error response is possible any more). */
  readonly headersSent: boolean;
  /**
   * Whether the connection must close after this response: the request's body may not have been read to its end,
   * so the next request's bytes cannot be found.
   */
  closeAfterResponse(): void;
}

/** What a front end calls on the proxy's per-request handler. */
export interface DownstreamSink {
  onBodyChunk(chunk: Uint8Array): void;
  onBodyEnd(): void;
  onDownstreamDrain(): void;
  /** The client went away (connection closed before the response ended). */
  onDownstreamAbort(): void;
}

/** A listening front end: accepts client connections and hands each request to the proxy. */
export interface FrontEnd {
  /** For the start-up log line: `node:http (native-free)`, `uWebSockets.js`. */
  readonly transport: string;
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stops accepting; in-flight requests get `graceMs` to finish, then their connections are closed. */
  close(graceMs: number): Promise<void>;
}
