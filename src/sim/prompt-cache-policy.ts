/**
 * What llama-server does with its RAM prompt cache when a task is launched on a slot (server_prompt_cache):
 * 1. the slot's current state is stored in RAM when the slot was picked by LRU, or when the new prompt keeps less
 *    than half of it (f_keep < 0.5: the server is "about to lose a large portion of the existing context");
 * 2. the RAM entry sharing the longest prefix with the prompt is loaded into the slot when it beats what the
 *    slot already shares (this costs ramLoadMsPerMB, and is not part of `prompt_ms`);
 * 3. with `--cache-idle-slots`, the other idle slots are stored in RAM too, and cleared when the KV buffer is
 *    unified (`-kvu`), so an idle slot's content may vanish.
 */
import type { Hold } from './compute-engine.js';
import { transferMs } from './cost-model.js';
import type { ModelInstance } from './model-instance.js';
import type { SlotChoice } from './slot-scheduler.js';
import type { Slot } from './slot.js';
import { commonPrefixLength } from './tokenizer.js';

/** How much of the prompt the slot holds once prepared. */
export interface PreparedSlot {
  /** Common prefix of the slot's tokens and the prompt (before the n−1 cap). */
  lcp: number;
  /** True when that prefix was loaded from the RAM cache. */
  ramHit: boolean;
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
  cachePrompt: boolean,
  hold: Hold,
): Promise<PreparedSlot> {
  let lcp = slot.reuseBlocked ? 0 : commonPrefixLength(slot.tokens, prompt);
  let ramHit = false;
  const ram = inst.ram;
  if (!ram.enabled) return { lcp, ramHit };

  if (slot.tokens.length > 0 && (how === 'lru' || lcp / slot.tokens.length < 0.5)) ram.put(slot.tokens);

  if (cachePrompt) {
    const best = ram.best(prompt);
    if (best && best.lcp > lcp) {
      const { cost } = inst.config;
      await hold(transferMs(ram.sizeOf(best.tokens), cost.ramLoadMsPerMB));
      slot.tokens = best.tokens;
      slot.reuseBlocked = false;
      lcp = best.lcp;
      ramHit = true;
      inst.recorder.record({ type: 'ram_hit', model: inst.config.id, slot: slot.id, n_tokens: best.tokens.length });
    }
  }

  if (inst.config.cacheIdleSlots) {
    for (const other of inst.slots) {
      if (other === slot || !other.idle || other.tokens.length === 0) continue;
      ram.put(other.tokens);
      if (inst.config.kvUnified) other.clear();
    }
  }
  return { lcp, ramHit };
}
