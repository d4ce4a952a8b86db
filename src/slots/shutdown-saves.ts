/**
 * The last saves before the proxy exits (smart policy): every idle slot whose content is not on disk yet. No request
 * waits for them, so content is let go by the policy's idle-time rule only (SavePolicy.idleSkipSave: the
 * SAVE_MIN_NEW_TOKENS floor), not by the save-versus-prefill costs. Saves on one
 * backend run one after another (llama-server runs slot actions on its main loop anyway); backends run side by
 * side, so a backend that hangs holds up only its own slots. The shutdown deadline stops them through `signal`.
 */
import type { Logger } from 'pino';
import type { SkipSave } from './save-skip.js';
import type { SlotCache } from './slot-cache.js';
import { unsavedBigContent } from './slot-planner.js';
import type { SlotPool } from './slot-pool.js';
import type { SlotState } from './slot-state.js';
import { shortKey } from '../cache/meta-file.js';

export interface ShutdownSaveDeps {
  pool: SlotPool;
  slotCache: SlotCache;
  log: Logger;
  /** The unsaved content let go (SavePolicy.idleSkipSave). */
  skipSave: SkipSave;
  describeBackend: (backend: number) => string;
}

/** What the slots hold and only they have, as logged when the deadline leaves it unsaved. */
export interface UnsavedSlot {
  backend: string;
  model: string;
  slot: number;
  /** First 16 hex digits of the content's key. */
  key: string;
}

/** Save what only the idle slots hold; starts no further save once `signal` is aborted. */
export async function saveOnShutdown(deps: ShutdownSaveDeps, signal: AbortSignal): Promise<void> {
  const byBackend = new Map<number, SlotState[]>();
  for (const slot of deps.pool.all()) byBackend.set(slot.backend, [...(byBackend.get(slot.backend) ?? []), slot]);
  await Promise.all(
    [...byBackend.values()].map(async (slots) => {
      for (const slot of slots) {
        if (signal.aborted) return;
        const content = unsavedBigContent(slot, deps.skipSave);
        if (!content || slot.busy) continue;
        const save = await deps.slotCache.save(slot, content);
        deps.log.info(
          { backend: deps.describeBackend(slot.backend), slot: slot.id, key: shortKey(content.key), save },
          'saved on shutdown',
        );
      }
    }),
  );
}

/** The content a shutdown save would keep and that is still not on disk: what a cut-short shutdown loses. */
export function unsavedAtShutdown(deps: ShutdownSaveDeps): UnsavedSlot[] {
  return deps.pool.all().flatMap((slot) => {
    const content = unsavedBigContent(slot, deps.skipSave);
    return content
      ? [
          {
            backend: deps.describeBackend(slot.backend),
            model: content.model,
            slot: slot.id,
            key: shortKey(content.key),
          },
        ]
      : [];
  });
}
