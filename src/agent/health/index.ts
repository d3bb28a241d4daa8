/** HTTP health checks of running tasks, reported as healthy/unhealthy transitions. */
export { HttpHealthChecker } from './health-checker.js';
export type { HealthCheckOptions, HealthEvents, HealthStatus } from './health-checker.js';
export { probeHttp } from './http-probe.js';
export type { ProbeResult, ProbeTarget } from './http-probe.js';
