/**
 * The master's HTTP API (v1). Each route maps a request to one Master call and its view; errors are the
 * Master's own BorealisErrors, turned into `{code, message, problems?}` bodies by the transport. Every body is
 * validated completely before the Master is called, and the Master validates again before it writes anything,
 * so a refused request changes nothing.
 */
import type { EventStream, EventStreamOptions } from '../events/stream.js';
import type { Master } from '../master/index.js';
import { AGENT_SUBPROTOCOL, TASK_STATES, type TaskStateName } from '../proto/index.js';
import type { HttpResponse, HttpServer } from '../transport/index.js';
import { mountDashboard } from '../ui/index.js';
import { agentConnectionOf } from './agent-ws.js';
import { parseBody } from './body.js';
import { mountEventStream } from './events-ws.js';
import { InvalidArgumentError } from './errors.js';
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

  // `job=`, `state=` (one or more, comma-separated) filter; `offset=` and `limit=` page through what is left, in the
  // listing's order; `total` counts the matches before paging, so a client knows when it has them all.
  server.route('GET', '/v1/tasks', (req) => {
    const job = req.query.get('job');
    const q = taskQuery(req.query);
    return ok(master.pageTasks(job === null || job === '' ? undefined : job, q));
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

/** The most tasks one page may ask for. */
const MAX_TASK_PAGE = 100_000;

/** `state`, `offset` and `limit` of a task listing, checked (400 BRL_ERR_INVALID_ARGUMENT naming the parameter). */
function taskQuery(query: URLSearchParams): { states?: Set<TaskStateName>; offset: number; limit?: number } {
  const int = (name: string, min: number, max: number): number | null => {
    const text = query.get(name);
    if (text === null || text === '') return null;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number in ${min}..${max}, got ${JSON.stringify(text)}`, [{ path: name, message: `must be a whole number in ${min}..${max}` }]);
    }
    return n;
  };
  let states: Set<TaskStateName> | undefined;
  const stateText = query.get('state');
  if (stateText !== null && stateText !== '') {
    states = new Set();
    for (const s of stateText.split(',')) {
      if (!(TASK_STATES as readonly string[]).includes(s)) {
        throw new InvalidArgumentError(`state must be one or more of ${TASK_STATES.join(', ')}, got ${JSON.stringify(s)}`, [{ path: 'state', message: `unknown state ${JSON.stringify(s)}` }]);
      }
      states.add(s as TaskStateName);
    }
  }
  const limit = int('limit', 1, MAX_TASK_PAGE);
  return { ...(states === undefined ? {} : { states }), offset: int('offset', 0, Number.MAX_SAFE_INTEGER) ?? 0, ...(limit === null ? {} : { limit }) };
}
