/** What `borealis` exits with; scripts test these, so they never change meaning. */
export const ExitCode = {
  OK: 0,
  /** The master refused the request or failed (any error response other than 404). */
  SERVER_ERROR: 1,
  /** Bad flags or arguments, an unreadable file: nothing was sent. */
  USAGE: 2,
  /** No answer from the master (refused, timed out, name not resolved). */
  UNREACHABLE: 3,
  /** The job, task or agent named does not exist. */
  NOT_FOUND: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI reports in one message (plus field problems) and turns into an exit code. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
    readonly problems: { path: string; message: string }[] = [],
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usage(message: string): CliError {
  return new CliError(ExitCode.USAGE, message);
}
