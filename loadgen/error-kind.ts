/**
 * Why a request did not count as a success. A closed set: the report's `errors` object has exactly these keys, so
 * scripts can rely on them (snake_case, as the balancer's own error kinds).
 * - connect_refused: nothing listens at the target (ECONNREFUSED)
 * - reset: the connection closed or was reset before the response ended
 * - timeout: no connection, headers or body within --timeout, or still unfinished when the run gave up draining
 * - status_4xx / status_5xx: a complete response with that class of status (its bytes still count)
 * - other: anything else (a malformed response, an unexpected client error)
 */
export const ERROR_KINDS = ['connect_refused', 'reset', 'timeout', 'status_4xx', 'status_5xx', 'other'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export const ErrorKindIndex = {
  connect_refused: 0,
  reset: 1,
  timeout: 2,
  status_4xx: 3,
  status_5xx: 4,
  other: 5,
} as const satisfies Record<ErrorKind, number>;

/** The code of the error the run's own timeout sweep fails a request with. */
export const TIMEOUT_CODE = 'LOADGEN_TIMEOUT';

/**
 * The kind of a transport failure, by its stable code (undici's UND_ERR_* or the socket's errno), never its message.
 * `closing` is set once the run has stopped waiting: requests it then destroys failed by running out of time.
 */
export function classifyError(err: Error, closing: boolean): number {
  switch ((err as { code?: unknown }).code) {
    case 'ECONNREFUSED':
      return ErrorKindIndex.connect_refused;
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    // A request whose connection undici closed under it: another request on it timed out, pipelined ahead of it.
    case 'UND_ERR_INFO':
      return ErrorKindIndex.reset;
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
    case TIMEOUT_CODE:
      return ErrorKindIndex.timeout;
    default:
      return closing ? ErrorKindIndex.timeout : ErrorKindIndex.other;
  }
}
