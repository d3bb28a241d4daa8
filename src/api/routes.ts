/**
 * The master's HTTP API (v1). Each route maps a request to one Master call and its view; errors are the
 * Master's own BorealisErrors, turned into `{code, message, problems?}` bodies by the transport. Every body is
 * validated completely before the Master is called, and the Master validates again before it writes anything,
 * so a refused request changes nothing.
 */
import type { EventStream, EventStreamOptions } from '../events/stream.js';
import type { Master } from '../master/index.js';
import { AGENT_SUBPROTOCOL } from '../proto/index.js';
import type { HttpResponse, HttpServer } from '../transport/index.js';
import { mountDashboard } from '../ui/index.js';
import { agentConnectionOf } from './agent-ws.js';
import { parseBody } from './body.js';
import { mountEventStream } from './events-ws.js';
import { checkJobSpec, checkScale } from './schema.js';

export const AGENT_WS_PATH = '/v1/agents/ws';
export const API_VERSION = 'v1';

const ok = (json: unknown, status = 200): HttpResponse => ({ status, json });

export interface RouteOptions {
  /** Batching and backpressure of GET /v1/events. */
  events?: EventStreamOptions;
}

/** Mounts every route; returns the event stream (close it before the server, so its readers get a resume seq). */
export function registerRoutes(server: HttpServer, master: Master, opts: RouteOptions = {}): EventStream {
  server.route('POST', '/v1/jobs', async (req) => {
    const spec = checkJobSpec(parseBody(req, true));
    return ok(await master.submitJob(spec), 201);
  });
  server.route('GET', '/v1/jobs', () => ok({ jobs: master.listJobs() }));
  server.route('GET', '/v1/jobs/:name', (req) => ok(master.getJob(req.params.name)));
  server.route('PATCH', '/v1/jobs/:name', async (req) => {
    master.getJob(req.params.name); // 404 before 400: the job is what the URL names
    const { instances } = checkScale(parseBody(req, false));
    return ok(await master.scaleJob(req.params.name, instances));
  });
  server.route('DELETE', '/v1/jobs/:name', async (req) => ok(await master.killJob(req.params.name)));

  server.route('GET', '/v1/tasks', (req) => {
    const job = req.query.get('job');
    return ok({ tasks: master.listTasks(job === null || job === '' ? undefined : job) });
  });
  server.route('GET', '/v1/tasks/:id', (req) => ok(master.getTask(req.params.id)));
  server.route('POST', '/v1/tasks/:id/kill', async (req) => ok(await master.killTask(req.params.id)));

  server.route('GET', '/v1/agents', () => ok({ agents: master.listAgents() }));
  // Draining a lost agent records the drain and leaves it lost (it re-registers draining): Master.drainAgent says why.
  server.route('POST', '/v1/agents/:id/drain', async (req) => ok(await master.drainAgent(req.params.id)));
  // Lifts a drain. Idempotent, as Nomad's `node drain -disable`: an agent that is not draining answers 200 with
  // its view, unchanged; only an unknown agent is refused (404 BRL_ERR_UNKNOWN_AGENT).
  server.route('POST', '/v1/agents/:id/undrain', async (req) => ok(await master.undrainAgent(req.params.id)));
  server.route('GET', '/v1/cluster', () => ok(master.cluster()));

  server.route('GET', '/health', () => ok({ status: 'ok' }));
  server.route('GET', '/metrics', async () => ({
    status: 200,
    text: await master.metrics.metrics(),
    contentType: master.metrics.contentType,
  }));

  // The live dashboard: a static page that reads the event stream below.
  mountDashboard(server);

  server.websocket(AGENT_WS_PATH, {
    protocols: [AGENT_SUBPROTOCOL],
    onOpen: (socket) => master.attachAgent(agentConnectionOf(socket)),
  });
  return mountEventStream(server, master, opts.events);
}
