// Seeds derived from (run seed, epoch, batch): each batch's shuffle and augmentation
// depend on these numbers alone, so a run resumed at any batch, or batches made ahead
// of time, draw exactly what an uninterrupted run draws.

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit seed from a sequence of integers (order matters). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) h = fmix32((h ^ fmix32((p | 0) + 0x632be5ab)) + 0x7f4a7c15);
  return h;
}
