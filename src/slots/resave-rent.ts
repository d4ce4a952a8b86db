/**
 * The "rent" already paid for not re-saving a conversation (ski rental). Letting unsaved growth go at an eviction
 * means that, when the conversation comes back, its older entry is restored and the growth is prefilled again. Each
 * such loss is cheaper than one save, but a conversation evicted again and again pays it again and again. So the
 * tokens given up are summed per older entry, and a save is skipped only while what was paid plus what would be lost
 * now stays below the cost of the save: the total re-prefill stays within about one save's worth.
 */

/** Enough entries for every conversation a proxy juggles; the oldest are forgotten past it (they restart at 0). */
const MAX_ENTRIES = 10_000;

export class ResaveRent {
  private readonly paid = new Map<string, number>();

  /** Tokens given up so far over the entry `parentKey`. */
  paidOver(parentKey: string): number {
    return this.paid.get(parentKey) ?? 0;
  }

  /** An eviction let `tokens` of growth over `parentKey` go: they will be prefilled again if it comes back. */
  note(parentKey: string, tokens: number): void {
    const total = this.paidOver(parentKey) + Math.max(0, tokens);
    this.paid.delete(parentKey); // re-inserted last: the Map's order is the recency order
    this.paid.set(parentKey, total);
    if (this.paid.size > MAX_ENTRIES) this.paid.delete(this.paid.keys().next().value!);
  }
}
