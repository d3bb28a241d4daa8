import { EventStream, type EventStreamOptions } from '../events/stream.js';
import { parseStreamQuery } from '../events/query.js';
import type { Master } from '../master/index.js';
import { EVENTS_JSON_SUBPROTOCOL, EVENTS_PATH, EVENT_SUBPROTOCOLS, EventCloseCode } from '../proto/events.js';
import type { HttpServer } from '../transport/index.js';

/**
 * Clients send nothing on the stream (pings are control frames, answered by the transport): 4 KiB caps what a
 * confused client can make the server buffer before its frame is refused (1009).
 */
const MAX_CLIENT_FRAME_BYTES = 4096;

/**
 * GET /v1/events: the master's event stream over a WebSocket (src/proto/events.ts has the wire format).
 * The subprotocol picks the encoding and the query (since, epoch, job, agent, type) is checked before the
 * handshake: an unknown subprotocol is 400 BRL_ERR_PROTOCOL, a bad query 400 BRL_ERR_INVALID_ARGUMENT, and no
 * socket is opened for either. A client data frame closes the stream with 1003.
 */
export function mountEventStream(server: HttpServer, master: Master, opts: EventStreamOptions = {}): EventStream {
  const stream = new EventStream(
    master.events,
    () => ({ jobs: master.listJobs(), tasks: master.listTasks(), agents: master.listAgents(), cluster: master.cluster() }),
    opts,
  );
  serveEventStream(server, stream);
  return stream;
}

/** GET /v1/events on `server`, fed by `stream` (the master's, or a bare bus's in the events benchmark). */
export function serveEventStream(server: HttpServer, stream: EventStream): void {
  server.websocket(EVENTS_PATH, {
    protocols: EVENT_SUBPROTOCOLS,
    maxPayloadBytes: MAX_CLIENT_FRAME_BYTES,
    accept: (req) => void parseStreamQuery(req.query),
    onOpen: (socket, req) => {
      const sub = stream.open(socket, socket.protocol === EVENTS_JSON_SUBPROTOCOL ? 'json' : 'protobuf', parseStreamQuery(req.query));
      if (!sub) return;
      socket.onClose(() => sub.detach());
      socket.onMessage(() =>
        sub.end(EventCloseCode.CLIENT_DATA, 'the event stream is read-only: put filters in the query string and reconnect'),
      );
    },
  });
}
