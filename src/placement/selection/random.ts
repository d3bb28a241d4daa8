const TWO_TO_MINUS_32 = 1 / 4294967296;

/**
 * xorshift32: a seeded, allocation-free generator, so a seed reproduces a placement exactly.
 * Statistical quality is ample for picking candidates; it is not for anything secret.
 */
export class Xorshift32 {
  private s: number;

  constructor(seed: number) {
    this.s = (seed | 0) === 0 ? 0x9e3779b9 | 0 : seed | 0;
  }

  /**
   * Uniform-ish integer in [0, n), n < 2^31: the high part of x * n (Lemire's multiply-shift),
   * which costs a multiply where `%` on a full 32-bit value costs V8 a floating-point modulo. The
   * bias is at most n / 2^32. Exact while x * n < 2^53 (any row count); the clamp covers the rest.
   */
  below(n: number): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    const r = ((x >>> 0) * n * TWO_TO_MINUS_32) | 0;
    return r < n ? r : n - 1;
  }
}
