/**
 * `o` without its undefined properties, so that `{ ...DEFAULTS, ...definedOnly(opts) }` lets an option given as
 * `undefined` (an absent CLI flag, a spread-through optional field) keep its default instead of erasing it.
 */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
