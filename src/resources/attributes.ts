import { BadAttributeError } from '../api/errors.js';

/**
 * Node attributes (`zone=a`, `gpu_model=a100`, any key) are interned so that the hot path compares
 * small integers, never strings. Keys map to a fixed number of column slots in the node table;
 * values map to ids that are unique across all keys. Id 0 is reserved for "attribute absent".
 */
export const ABSENT = 0;

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_.\-/]*$/;

/** True when `key` may name an attribute (checked before anything is interned). */
export function isValidAttributeKey(key: string): boolean {
  return KEY_RE.test(key);
}

export class AttributeInterner {
  readonly maxKeys: number;
  private readonly keySlots = new Map<string, number>();
  private readonly keyNames: string[] = [];
  private readonly valueIds = new Map<string, number>();
  private readonly valueNames: string[] = [''];
  private readonly valueKeys: number[] = [-1];
  /** Bumped whenever a value is added, so compiled regex sets know they are stale. */
  private gen = 0;

  constructor(maxKeys: number) {
    this.maxKeys = maxKeys;
  }

  get generation(): number {
    return this.gen;
  }

  get valueCount(): number {
    return this.valueNames.length;
  }

  /** Slot of a key, or -1 when no node has ever carried it. */
  slotOf(key: string): number {
    return this.keySlots.get(key) ?? -1;
  }

  /** Slot of a key, creating it (attribute keys come from agents, so the set is open). */
  internKey(key: string): number {
    let slot = this.keySlots.get(key);
    if (slot !== undefined) return slot;
    if (!KEY_RE.test(key)) throw new BadAttributeError(`attribute name ${JSON.stringify(key)} is not valid`);
    if (this.keyNames.length >= this.maxKeys) {
      throw new BadAttributeError(
        `attribute ${JSON.stringify(key)} would be key number ${this.keyNames.length + 1}; the table holds ${this.maxKeys}`,
      );
    }
    slot = this.keyNames.length;
    this.keySlots.set(key, slot);
    this.keyNames.push(key);
    return slot;
  }

  /** Id of a value under a key, or ABSENT when unknown. Values are namespaced by key. */
  valueIdOf(slot: number, value: string): number {
    return this.valueIds.get(`${slot}\u0000${value}`) ?? ABSENT;
  }

  internValue(slot: number, value: string): number {
    const k = `${slot}\u0000${value}`;
    let id = this.valueIds.get(k);
    if (id !== undefined) return id;
    id = this.valueNames.length;
    this.valueIds.set(k, id);
    this.valueNames.push(value);
    this.valueKeys.push(slot);
    this.gen++;
    return id;
  }

  keyName(slot: number): string {
    return this.keyNames[slot] ?? '';
  }

  valueName(id: number): string {
    return this.valueNames[id] ?? '';
  }

  /** Every value id ever seen under a key slot, with its string, for regex compilation. */
  *valuesOf(slot: number): IterableIterator<[number, string]> {
    for (let id = 1; id < this.valueNames.length; id++) {
      if (this.valueKeys[id] === slot) yield [id, this.valueNames[id]!];
    }
  }

  keys(): readonly string[] {
    return this.keyNames;
  }
}

/** `zone=a,rack=r1` (the agent's --attributes flag) to a record; values may not be empty. */
export function parseAttributes(text: string): Record<string, string> {
  // A null-prototype object: `constructor=x` or `__proto__=y` are ordinary attribute names here.
  const out = Object.create(null) as Record<string, string>;
  for (const part of text.split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0 || eq === trimmed.length - 1) {
      throw new BadAttributeError(`attribute ${JSON.stringify(trimmed)} is not name=value`);
    }
    const key = trimmed.slice(0, eq).trim();
    if (!KEY_RE.test(key)) throw new BadAttributeError(`attribute name ${JSON.stringify(key)} is not valid`);
    if (Object.hasOwn(out, key)) throw new BadAttributeError(`attribute ${JSON.stringify(key)} is given twice`);
    out[key] = trimmed.slice(eq + 1).trim();
  }
  return out;
}
