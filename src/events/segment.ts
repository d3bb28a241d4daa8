/**
 * One ~INDEX_STRIDE_BYTES apart: a reader resuming at any seq reads and skips at most that many bytes of a segment
 * instead of scanning it from the start, and a 16 MiB segment costs ~256 entries (4 KiB) of memory.
 */
const INDEX_STRIDE_BYTES = 64 * 1024;

/**
 * Where records start in a segment, sparsely: (seq, offset) pairs in increasing order, always including the
 * segment's first record at offset 0. Entries come from the writer (one per flushed batch at most every stride)
 * and, for segments written before a restart, from readers as they pass (a segment is never scanned up front).
 */
export class SparseIndex {
  readonly #seqs: number[];
  readonly #offsets: number[];

  constructor(firstSeq: number) {
    this.#seqs = [firstSeq];
    this.#offsets = [0];
  }

  /** Adds an entry if it is past the last one by a stride; out-of-order or close entries are dropped (they are only hints). */
  note(seq: number, offset: number): void {
    const n = this.#seqs.length - 1;
    if (seq <= this.#seqs[n]! || offset < this.#offsets[n]! + INDEX_STRIDE_BYTES) return;
    this.#seqs.push(seq);
    this.#offsets.push(offset);
  }

  /** The last entry at or before `seq`: start reading there and skip forward. */
  floor(seq: number): { seq: number; offset: number } {
    const s = this.#seqs;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (s[mid]! <= seq) lo = mid;
      else hi = mid - 1;
    }
    return { seq: s[lo]!, offset: this.#offsets[lo]! };
  }

  get entries(): number {
    return this.#seqs.length;
  }
}

/** A segment file as the log knows it. `bytes` and `lastSeq` grow while it is the active one. */
export interface Segment {
  readonly path: string;
  readonly firstSeq: number;
  /** Bytes written to the file (what a reader may read). */
  bytes: number;
  /** Last seq written to it; firstSeq - 1 while empty. */
  lastSeq: number;
  readonly index: SparseIndex;
}
