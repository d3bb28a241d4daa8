/**
 * xorshift32: a seeded, allocation-free generator, so a seed reproduces a placement exactly.
 * Statistical quality is ample for picking candidates; it is not for anything secret.
 */
export class Xorshift32 {
  private s: number;

  constructor(seed: number) {
    this.s = (seed | 0) === 0 ? 0x9e3779b9 | 0 : seed | 0;
  }

  /** Uniform-ish integer in [0, n). */
  below(n: number): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    return (x >>> 0) % n;
  }
}
