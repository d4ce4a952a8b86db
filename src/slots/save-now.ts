/**
 * "Save every unsaved slot now", on an operator's request: every idle slot whose big content is not on disk is
 * taken from the pool as background work (a request never finds it half-saved; a busy slot is left to its request
 * and reported), saved, and given back without touching its LRU place. One backend's saves run in sequence (the
 * server runs slot actions on its main loop anyway), backends side by side.
 */
import type { CacheOpResult, SlotCache } from './slot-cache.js';
import { NEVER_SKIP } from './save-skip.js';
import { unsavedBigContent } from './slot-planner.js';
import type { SlotPool } from './slot-pool.js';
import type { SlotState } from './slot-state.js';
import { shortKey } from '../cache/meta-file.js';

export interface SaveNowResult {
  backend: number;
  /** The model whose content it held. */
  model: string;
  slot: number;
  /** First 16 hex digits of the content's key. */
  key: string;
  /** The save's result, or 'busy' when a request or a save held the slot. */
  result: CacheOpResult | 'busy';
}

export async function saveAllNow(pool: SlotPool, slotCache: SlotCache): Promise<SaveNowResult[]> {
  const byBackend = new Map<number, SlotState[]>();
  for (const slot of pool.all()) {
    if (unsavedBigContent(slot, NEVER_SKIP))
      byBackend.set(slot.backend, [...(byBackend.get(slot.backend) ?? []), slot]);
  }
  const results = await Promise.all(
    [...byBackend.values()].map(async (slots) => {
      const done: SaveNowResult[] = [];
      for (const slot of slots) {
        const content = unsavedBigContent(slot, NEVER_SKIP);
        if (!content) continue; // saved meanwhile (write-behind, an eviction)
        const entry = { backend: slot.backend, model: content.model, slot: slot.id, key: shortKey(content.key) };
        if (!pool.takeForBackground(slot)) {
          done.push({ ...entry, result: 'busy' });
          continue;
        }
        try {
          done.push({ ...entry, result: await slotCache.save(slot, content) });
        } finally {
          pool.release(slot, { touch: false });
        }
      }
      return done;
    }),
  );
  return results.flat();
}
