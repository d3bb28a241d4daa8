export * from './errors.js';
export { registerRoutes, AGENT_WS_PATH, API_VERSION } from './routes.js';
export type { RouteOptions } from './routes.js';
export { mountEventStream } from './events-ws.js';
export { startApiServer } from './server.js';
export type { ApiServer } from './server.js';
export { checkJobSpec, checkScale, JOB_SPEC_SCHEMA, CONSTRAINT_OPERATORS } from './schema.js';
export { parseBody, mediaType, JSON_TYPES, YAML_TYPES } from './body.js';
