/** Checks a task spec once, up front, so the runner only ever fails at run time for run-time reasons. */
import { InvalidArgumentError } from '../../api/errors.js';
import type { FieldProblem } from '../../api/errors.js';
import { checkLimits, checkTaskId } from '../isolation/limits.js';
import type { TaskSpec } from './types.js';

/** Portable environment names; anything else (an `=` or NUL) would corrupt the environment block. */
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkTaskSpec(spec: TaskSpec): TaskSpec {
  checkTaskId(spec.taskId);
  const problems: FieldProblem[] = [];
  if (typeof spec.job !== 'string' || spec.job === '' || spec.job.includes('\0')) {
    problems.push({ path: 'job', message: 'must be a non-empty string' });
  }
  const cmd = spec.command;
  if (cmd !== null && typeof cmd === 'object' && 'argv' in cmd) {
    if (!Array.isArray(cmd.argv) || cmd.argv.length === 0 || cmd.argv[0] === '') {
      problems.push({ path: 'command.argv', message: 'must be a non-empty array whose first element names a program' });
    } else {
      cmd.argv.forEach((a, i) => {
        if (typeof a !== 'string' || a.includes('\0')) problems.push({ path: `command.argv[${i}]`, message: 'must be a string without NUL' });
      });
    }
  } else if (cmd !== null && typeof cmd === 'object' && 'shell' in cmd) {
    if (typeof cmd.shell !== 'string' || cmd.shell.trim() === '' || cmd.shell.includes('\0')) {
      problems.push({ path: 'command.shell', message: 'must be a non-empty string without NUL' });
    }
  } else {
    problems.push({ path: 'command', message: 'must be {argv: [...]} or {shell: "..."}' });
  }
  for (const [name, value] of Object.entries(spec.env ?? {})) {
    if (!ENV_NAME_RE.test(name)) problems.push({ path: `env.${name}`, message: 'is not a valid variable name' });
    else if (typeof value !== 'string' || value.includes('\0')) problems.push({ path: `env.${name}`, message: 'must be a string without NUL' });
  }
  (spec.ports ?? []).forEach((p, i) => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) problems.push({ path: `ports[${i}]`, message: 'must be a port number 1-65535' });
  });
  if (problems.length > 0) throw new InvalidArgumentError(`invalid task spec for ${spec.taskId}`, problems);
  return { ...spec, limits: checkLimits(spec.limits) };
}
