/**
 * Shard ownership belongs to a placement thread, not to a batch: piscina hands a batch to whichever
 * thread is free, and if ownership travelled with the batch, two threads would work the same
 * shards at once whenever one ran ahead — committing to the same rows and summary words
 * (conflicts, cache lines bouncing between cores) and losing the sticky row at every switch.
 * Each thread claims a free slot of a shared Int32Array (one slot per thread) once, at start, and
 * owns the shards with shard % slots === its slot for its life. A thread that replaces one that
 * died holding its slot finds none free and shares one (`fallback % slots`): ownership is
 * locality, never correctness.
 */
export function claimOwnership(slots: Int32Array, fallback: number): number {
  for (let i = 0; i < slots.length; i++) if (Atomics.compareExchange(slots, i, 0, 1) === 0) return i;
  return fallback % slots.length;
}
