import { BadQuantityError } from '../api/errors.js';

/**
 * Human resource quantities to the integer units the table stores:
 * cpus to millicores, mem/disk to MiB. Integers keep the hot path in Int32 columns and make
 * fit checks exact (no float drift after a million add/subtract pairs).
 */

const BINARY: Record<string, number> = { Ki: 1 / 1024, Mi: 1, Gi: 1024, Ti: 1024 * 1024, Pi: 1024 * 1024 * 1024 };
// Decimal suffixes as Kubernetes reads them; converted to MiB and rounded up so a request is never under-counted.
const DECIMAL: Record<string, number> = {
  k: 1e3 / 1048576,
  K: 1e3 / 1048576,
  M: 1e6 / 1048576,
  G: 1e9 / 1048576,
  T: 1e12 / 1048576,
  P: 1e15 / 1048576,
};

/** Largest value an Int32 column holds; quantities beyond it are refused rather than wrapped. */
export const MAX_QUANTITY = 0x7fffffff;

const NUMBER_RE = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$/;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function checkFinite(n: number, what: string, raw: unknown): void {
  if (!Number.isFinite(n)) throw new BadQuantityError(`${what} ${describe(raw)} is not a finite number`);
  if (n < 0) throw new BadQuantityError(`${what} ${describe(raw)} is negative`);
}

/** Cores ("1.5", 1.5, "500m") to millicores. */
export function parseCpus(raw: unknown, what = 'cpus'): number {
  let cores: number;
  if (typeof raw === 'number') {
    checkFinite(raw, what, raw);
    cores = raw;
  } else if (typeof raw === 'string') {
    const m = NUMBER_RE.exec(raw);
    if (!m) throw new BadQuantityError(`${what} ${describe(raw)} is not a number of cores`);
    const n = Number(m[1]);
    checkFinite(n, what, raw);
    if (m[2] === '') cores = n;
    else if (m[2] === 'm') cores = n / 1000;
    else throw new BadQuantityError(`${what} ${describe(raw)} has unknown unit ${JSON.stringify(m[2])} (use cores or "m")`);
  } else {
    throw new BadQuantityError(`${what} must be a number or a string, got ${typeof raw}`);
  }
  const milli = Math.round(cores * 1000);
  if (milli > MAX_QUANTITY) throw new BadQuantityError(`${what} ${describe(raw)} is too large`);
  return milli;
}

/** Bytes-like quantities ("512Mi", "2Gi", "1.5G", 512) to MiB; a bare number is already MiB. */
export function parseMebibytes(raw: unknown, what = 'mem'): number {
  let mib: number;
  if (typeof raw === 'number') {
    checkFinite(raw, what, raw);
    mib = raw;
  } else if (typeof raw === 'string') {
    const m = NUMBER_RE.exec(raw);
    if (!m) throw new BadQuantityError(`${what} ${describe(raw)} is not a quantity like "512Mi" or "2Gi"`);
    const n = Number(m[1]);
    checkFinite(n, what, raw);
    const unit = m[2] ?? '';
    if (unit === '') mib = n;
    else if (unit in BINARY) mib = n * BINARY[unit]!;
    else if (unit in DECIMAL) mib = n * DECIMAL[unit]!;
    else if (unit === 'B' || unit === 'b') mib = n / 1048576;
    else
      throw new BadQuantityError(
        `${what} ${describe(raw)} has unknown unit ${JSON.stringify(unit)} (use Ki, Mi, Gi, Ti or K, M, G, T)`,
      );
  } else {
    throw new BadQuantityError(`${what} must be a number or a string, got ${typeof raw}`);
  }
  const whole = Math.ceil(mib - 1e-9);
  if (whole > MAX_QUANTITY) throw new BadQuantityError(`${what} ${describe(raw)} is too large`);
  return whole;
}

/** A whole count (gpus, ports): no fractions, no units. */
export function parseCount(raw: unknown, what: string): number {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new BadQuantityError(`${what} ${describe(raw)} is not a number`);
  if (n < 0) throw new BadQuantityError(`${what} ${describe(raw)} is negative`);
  if (!Number.isInteger(n)) throw new BadQuantityError(`${what} ${describe(raw)} must be a whole number`);
  if (n > MAX_QUANTITY) throw new BadQuantityError(`${what} ${describe(raw)} is too large`);
  return n;
}

/** Millicores back to a human string ("1.5"). */
export function formatCpus(milli: number): string {
  return String(milli / 1000);
}

/** MiB back to the largest exact binary unit ("2Gi", "512Mi"). */
export function formatMebibytes(mib: number): string {
  if (mib !== 0 && mib % (1024 * 1024) === 0) return `${mib / (1024 * 1024)}Ti`;
  if (mib !== 0 && mib % 1024 === 0) return `${mib / 1024}Gi`;
  return `${mib}Mi`;
}
