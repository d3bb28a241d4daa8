/**
 * The load generator as a library, for benchmarks that run it in-process (or spawn bin/borealis-loadgen.js --json,
 * whose output is the same LoadReport).
 */
export { runLoad } from './run.js';
export { LOAD_DEFAULTS, MAX_TIMEOUT_MS, type LoadMode, type LoadOptions } from './options.js';
export { formatReport, type LatencyMs, type LoadReport } from './report.js';
export { ERROR_KINDS, type ErrorKind } from './error-kind.js';
export { parseDuration } from './duration.js';
export { isLoopbackHost } from './loopback.js';
