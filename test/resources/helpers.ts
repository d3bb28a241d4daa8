import { expect } from 'vitest';
import { isBorealisError, type BorealisError } from '../../src/api/errors.js';

/** Runs `fn`, expects it to throw a BorealisError, and returns it (callers test `.code`, never the message). */
export function thrown(fn: () => unknown): BorealisError {
  try {
    fn();
  } catch (err) {
    expect(isBorealisError(err), `expected a BorealisError, got ${String(err)}`).toBe(true);
    return err as BorealisError;
  }
  throw new Error('expected the call to throw');
}

/** The BRL_ERR_* code `fn` throws. */
export function codeOf(fn: () => unknown): string {
  return thrown(fn).code;
}
