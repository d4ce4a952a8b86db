/**
 * What llama-server does with its RAM prompt cache when a completion task is launched on a slot
 * (get_available_slot and server_prompt_cache):
 * 1. it decides whether to update the cache (`cacheUpdateWanted`): always for a slot picked by LRU; for a slot
 *    picked by similarity, or pinned with `id_slot`, when the prompt keeps less than half of the slot's state
 *    (f_keep < 0.5). A pinned slot that is EMPTY is never updated (f_keep is 0/0, NaN, and NaN < 0.5 is false), nor
 *    is any pinned slot when `--slot-prompt-similarity` is 0;
 * 2. on an update, the slot's state is stored in RAM and the entry that suits the prompt best is moved into the slot
 *    (this costs ramLoadMsPerMB, and is not part of `prompt_ms`); on a unified KV buffer the load needs as many free
 *    cells as the entry has tokens beside what the other slots hold (the idle ones are cleared only in step 3):
 *    without them it fails, the entry stays in RAM and the slot is left empty (`prompt_clear`);
 * 3. with `--cache-idle-slots`, the other idle slots are stored in RAM too, and cleared when the KV buffer is
 *    unified (`-kvu`), so an idle slot's content may vanish. The task's own slot is never cleared.
 */
import type { Hold } from './compute-engine.js';
import { transferMs } from './cost-model.js';
import type { ModelInstance } from './model-instance.js';
import type { SlotChoice } from './slot-scheduler.js';
import type { Slot } from './slot.js';
import { commonPrefixLength } from './tokenizer.js';

/** How much of the prompt the slot holds once prepared. */
export interface PreparedSlot {
  /** Common prefix of the slot's tokens and the prompt (before the n−1 cap); 0 after a sliding-window restore. */
  lcp: number;
  /** True when that prefix was loaded from the RAM cache. */
  ramHit: boolean;
}

/**
 * True when llama-server updates its prompt cache for a task given the slot `how` it was chosen
 * (get_available_slot's `update_cache`, measured on the real server: pinned to an empty or erased slot reuses 0
 * even when the prompt is in RAM; pinned to a slot holding another prompt reuses it from RAM).
 */
export function cacheUpdateWanted(
  how: SlotChoice,
  slotTokens: readonly string[],
  prompt: readonly string[],
  similarity: number,
): boolean {
  if (how === 'lru') return true;
  if (how === 'pinned' && (similarity === 0 || slotTokens.length === 0)) return false;
  const lcp = commonPrefixLength(slotTokens, prompt);
  // A pinned slot below the similarity threshold counts as f_sim_best = 0, so f_keep = 0.
  const similar = how === 'similarity' || (prompt.length > 0 && lcp / prompt.length > similarity);
  const fKeep = similar ? lcp / slotTokens.length : 0;
  return fKeep < 0.5;
}

/**
 * Applies the RAM-cache steps above to `slot` before `prompt` is processed on it; run as a task of the process's
 * main loop, which the RAM load holds for its modelled duration.
 */
export async function prepareSlot(
  inst: ModelInstance,
  slot: Slot,
  how: SlotChoice,
  prompt: readonly string[],
  hold: Hold,
): Promise<PreparedSlot> {
  const ram = inst.ram;
  let ramHit = false;
  if (ram.enabled && cacheUpdateWanted(how, slot.tokens, prompt, inst.config.similarity)) {
    ram.put(slot.tokens);
    const loaded = ram.take(prompt, slot.tokens, (tokens) => inst.fitsBeside(slot, tokens.length));
    if (loaded === 'no room') {
      slot.clear();
      inst.recorder.record({ type: 'ram_no_room', model: inst.config.id, slot: slot.id });
    } else if (loaded) {
      await hold(transferMs(ram.sizeOf(loaded.tokens), inst.config.cost.ramLoadMsPerMB));
      slot.tokens = loaded.tokens;
      slot.reuseBlocked = false;
      ramHit = true;
      inst.recorder.record({ type: 'ram_hit', model: inst.config.id, slot: slot.id, n_tokens: loaded.tokens.length });
    }
  }
  if (ram.enabled && inst.config.cacheIdleSlots) {
    for (const other of inst.slots) {
      if (other === slot || !other.idle || other.tokens.length === 0) continue;
      ram.put(other.tokens);
      if (inst.config.kvUnified) other.clear();
    }
  }
  return { lcp: slot.reuseBlocked ? 0 : commonPrefixLength(slot.tokens, prompt), ramHit };
}
