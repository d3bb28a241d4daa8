/**
 * Errors are part of Borealis' interface. Every failure a caller can cause has one class with a stable
 * `BRL_ERR_*` code and an HTTP status; callers test `err.code`, never the message.
 */

export const ErrorCodes = {
  INVALID_ARGUMENT: 'BRL_ERR_INVALID_ARGUMENT',
  BAD_QUANTITY: 'BRL_ERR_BAD_QUANTITY',
  BAD_PORT_RANGE: 'BRL_ERR_BAD_PORT_RANGE',
  BAD_ATTRIBUTE: 'BRL_ERR_BAD_ATTRIBUTE',
  BAD_RESOURCES: 'BRL_ERR_BAD_RESOURCES',
  BAD_CONSTRAINT: 'BRL_ERR_BAD_CONSTRAINT',
  DUPLICATE_TASK: 'BRL_ERR_DUPLICATE_TASK',
  UNKNOWN_TASK: 'BRL_ERR_UNKNOWN_TASK',
  DUPLICATE_NODE: 'BRL_ERR_DUPLICATE_NODE',
  UNKNOWN_NODE: 'BRL_ERR_UNKNOWN_NODE',
  TABLE_FULL: 'BRL_ERR_TABLE_FULL',
  INVALID_JOB_SPEC: 'BRL_ERR_INVALID_JOB_SPEC',
  UNKNOWN_JOB: 'BRL_ERR_UNKNOWN_JOB',
  DUPLICATE_JOB: 'BRL_ERR_DUPLICATE_JOB',
  JOB_NOT_ACTIVE: 'BRL_ERR_JOB_NOT_ACTIVE',
  UNKNOWN_AGENT: 'BRL_ERR_UNKNOWN_AGENT',
  INVALID_TRANSITION: 'BRL_ERR_INVALID_TRANSITION',
  PAYLOAD_TOO_LARGE: 'BRL_ERR_PAYLOAD_TOO_LARGE',
  MALFORMED_BODY: 'BRL_ERR_MALFORMED_BODY',
  UNSUPPORTED_MEDIA_TYPE: 'BRL_ERR_UNSUPPORTED_MEDIA_TYPE',
  NOT_FOUND: 'BRL_ERR_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'BRL_ERR_METHOD_NOT_ALLOWED',
  PROTOCOL: 'BRL_ERR_PROTOCOL',
  UNAVAILABLE: 'BRL_ERR_UNAVAILABLE',
  CLOSED: 'BRL_ERR_CLOSED',
  DATA_DIR_LOCKED: 'BRL_ERR_DATA_DIR_LOCKED',
  WORK_DIR_LOCKED: 'BRL_ERR_WORK_DIR_LOCKED',
  JOURNAL_CORRUPT: 'BRL_ERR_JOURNAL_CORRUPT',
  INTERNAL: 'BRL_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** One table from code to HTTP status, so the API layer never guesses. */
export const httpStatusOf: Readonly<Record<ErrorCode, number>> = {
  BRL_ERR_INVALID_ARGUMENT: 400,
  BRL_ERR_BAD_QUANTITY: 400,
  BRL_ERR_BAD_PORT_RANGE: 400,
  BRL_ERR_BAD_ATTRIBUTE: 400,
  BRL_ERR_BAD_RESOURCES: 400,
  BRL_ERR_BAD_CONSTRAINT: 400,
  BRL_ERR_DUPLICATE_TASK: 409,
  BRL_ERR_UNKNOWN_TASK: 404,
  BRL_ERR_DUPLICATE_NODE: 409,
  BRL_ERR_UNKNOWN_NODE: 404,
  BRL_ERR_TABLE_FULL: 507,
  BRL_ERR_INVALID_JOB_SPEC: 400,
  BRL_ERR_UNKNOWN_JOB: 404,
  BRL_ERR_DUPLICATE_JOB: 409,
  BRL_ERR_JOB_NOT_ACTIVE: 409,
  BRL_ERR_UNKNOWN_AGENT: 404,
  BRL_ERR_INVALID_TRANSITION: 409,
  BRL_ERR_PAYLOAD_TOO_LARGE: 413,
  BRL_ERR_MALFORMED_BODY: 400,
  BRL_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  BRL_ERR_NOT_FOUND: 404,
  BRL_ERR_METHOD_NOT_ALLOWED: 405,
  BRL_ERR_PROTOCOL: 400,
  BRL_ERR_UNAVAILABLE: 503,
  BRL_ERR_CLOSED: 503,
  BRL_ERR_DATA_DIR_LOCKED: 409,
  BRL_ERR_WORK_DIR_LOCKED: 409,
  BRL_ERR_JOURNAL_CORRUPT: 500,
  BRL_ERR_INTERNAL: 500,
};

/** A single problem in a request, addressed by its field path (`tasks[3].resources.cpus`). */
export interface FieldProblem {
  path: string;
  message: string;
}

export class BorealisError extends Error {
  readonly code: ErrorCode;
  readonly problems: FieldProblem[];

  constructor(code: ErrorCode, message: string, problems: FieldProblem[] = []) {
    super(message);
    this.name = 'BorealisError';
    this.code = code;
    this.problems = problems;
  }

  get httpStatus(): number {
    return httpStatusOf[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; problems?: FieldProblem[] } {
    return this.problems.length > 0
      ? { code: this.code, message: this.message, problems: this.problems }
      : { code: this.code, message: this.message };
  }
}

export class InvalidArgumentError extends BorealisError {
  constructor(message: string, problems: FieldProblem[] = []) {
    super(ErrorCodes.INVALID_ARGUMENT, message, problems);
  }
}

export class BadQuantityError extends BorealisError {
  constructor(message: string) {
    super(ErrorCodes.BAD_QUANTITY, message);
  }
}

export class BadPortRangeError extends BorealisError {
  constructor(message: string) {
    super(ErrorCodes.BAD_PORT_RANGE, message);
  }
}

export class BadAttributeError extends BorealisError {
  constructor(message: string) {
    super(ErrorCodes.BAD_ATTRIBUTE, message);
  }
}

export class BadResourcesError extends BorealisError {
  constructor(message: string, problems: FieldProblem[] = []) {
    super(ErrorCodes.BAD_RESOURCES, message, problems);
  }
}

export class BadConstraintError extends BorealisError {
  constructor(message: string, problems: FieldProblem[] = []) {
    super(ErrorCodes.BAD_CONSTRAINT, message, problems);
  }
}

export class DuplicateTaskError extends BorealisError {
  constructor(taskId: string) {
    super(ErrorCodes.DUPLICATE_TASK, `task id ${JSON.stringify(taskId)} is already known to the allocator`);
  }
}

export class UnknownTaskError extends BorealisError {
  constructor(taskId: string) {
    super(ErrorCodes.UNKNOWN_TASK, `task ${JSON.stringify(taskId)} holds no resources in the allocator`);
  }
}

export class DuplicateNodeError extends BorealisError {
  constructor(nodeId: string) {
    super(ErrorCodes.DUPLICATE_NODE, `node ${JSON.stringify(nodeId)} is already in the table`);
  }
}

export class UnknownNodeError extends BorealisError {
  constructor(nodeId: string) {
    super(ErrorCodes.UNKNOWN_NODE, `node ${JSON.stringify(nodeId)} is not in the table`);
  }
}

export class TableFullError extends BorealisError {
  constructor(message: string) {
    super(ErrorCodes.TABLE_FULL, message);
  }
}

export class ClosedError extends BorealisError {
  constructor(what: string) {
    super(ErrorCodes.CLOSED, `${what} is closed`);
  }
}

export class UnknownJobError extends BorealisError {
  constructor(name: string) {
    super(ErrorCodes.UNKNOWN_JOB, `job ${JSON.stringify(name)} does not exist`);
  }
}

export class DuplicateJobError extends BorealisError {
  constructor(name: string) {
    super(ErrorCodes.DUPLICATE_JOB, `job ${JSON.stringify(name)} already exists`);
  }
}

/** The job exists but has ended (killed, finished, failed): it can no longer be scaled. */
export class JobNotActiveError extends BorealisError {
  constructor(name: string, state: string) {
    super(ErrorCodes.JOB_NOT_ACTIVE, `job ${JSON.stringify(name)} is ${state}, not running`);
  }
}

/**
 * Another live process of the same kind holds the directory: a master's data directory (its journal and event
 * log take one writer) or an agent's work directory (two agents there would share one agent id). The code says
 * which; the message names the holder and the flag to change.
 */
export class DirLockedError extends BorealisError {
  readonly holderPid: number | null;

  constructor(owner: 'master' | 'agent', dir: string, holderPid: number | null) {
    const [code, what, flag] =
      owner === 'master' ? [ErrorCodes.DATA_DIR_LOCKED, 'data', '--data-dir'] : [ErrorCodes.WORK_DIR_LOCKED, 'work', '--work-dir'];
    super(code, `${what} directory ${dir} is in use by another ${owner}${holderPid === null ? '' : ` (pid ${holderPid})`}: stop it, or give this one its own ${flag}`);
    this.holderPid = holderPid;
  }
}

/**
 * The master's journal is damaged in a way no crash can cause (a bad record with intact ones after it,
 * a damaged sealed segment, a sequence gap). Opening refuses and leaves the files untouched: repairing
 * would silently rewind the cluster state, so an operator decides. `file` and `offset` locate the damage.
 */
export class JournalCorruptError extends BorealisError {
  readonly file: string;
  readonly offset: number;

  constructor(file: string, offset: number, message: string) {
    super(ErrorCodes.JOURNAL_CORRUPT, message);
    this.file = file;
    this.offset = offset;
  }
}

export class UnknownAgentError extends BorealisError {
  constructor(id: string) {
    super(ErrorCodes.UNKNOWN_AGENT, `agent ${JSON.stringify(id)} is not registered`);
  }
}

export class InvalidJobSpecError extends BorealisError {
  constructor(problems: FieldProblem[]) {
    super(
      ErrorCodes.INVALID_JOB_SPEC,
      `invalid job spec: ${problems.map((p) => `${p.path || '(root)'}: ${p.message}`).join('; ')}`,
      problems,
    );
  }
}

export function isBorealisError(err: unknown): err is BorealisError {
  return err instanceof BorealisError;
}
