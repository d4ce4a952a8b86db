/**
 * The seed's prefix measure over block hashes, shared by the disk index and the slot scheduler so that "how much of
 * this prompt does that entry (or that slot) hold" means the same thing everywhere.
 */

/** Number of equal leading block hashes. */
export function lcpBlocks(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** The seed's similarity ratio: lcp over the shorter of the two block lists. */
export function lcpRatio(lcp: number, a: readonly string[], b: readonly string[]): number {
  return lcp / Math.max(1, Math.min(a.length, b.length));
}

/**
 * `later` continues `earlier` (the same conversation, further on): every block of `earlier` but its last, which may
 * have been a partial block that the next turn filled, starts `later`.
 */
export function continuesBlocks(earlier: readonly string[], later: readonly string[]): boolean {
  return lcpBlocks(earlier, later) >= earlier.length - 1;
}
