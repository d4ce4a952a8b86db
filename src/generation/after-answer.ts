/**
 * What the flow does with a finished answer: record what the slot now holds (with its parent entry and session),
 * notice a slot that had lost its conversation, and say whether a model swap is coming.
 */
import { shortKey } from '../cache/meta-file.js';
import { continuesBlocks } from '../prompt/block-match.js';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import type { SlotPlan } from '../slots/slot-state.js';
import type { GenerationDeps } from './deps.js';
import { startedAgain } from './slot-truth.js';
import type { RoomAfter } from './slot-room.js';
import type { ForwardOutcome } from './forward.js';
import { tokensLeftInSlot } from './sse-tap.js';

/**
 * After the backend answered, the slot holds this prompt and its reply; after an abort we no longer know. When
 * the prompt extends what the slot held before (the same conversation), the entry on disk behind that earlier
 * state becomes this content's parent: the save that supersedes it replaces it (lineage).
 */
export function recordSlotContent(
  deps: Pick<GenerationDeps, 'pool' | 'backends'>,
  plan: SlotPlan,
  analysis: PromptAnalysis,
  outcome: ForwardOutcome,
  session: string | undefined,
): void {
  if (outcome.clientGone || !outcome.completed) {
    deps.pool.forget(plan.slot);
    return;
  }
  if (outcome.status >= 400) return;
  // Unpinned from the server's RAM cache: the conversation it brought back came before, not the slot's old content.
  const previous = plan.fromServerCache?.content ?? plan.slot.content;
  const continues =
    previous?.big === true && previous.model === analysis.model && continuesBlocks(previous.blocks, analysis.blocks);
  const nTokens = tokensLeftInSlot(outcome.timings);
  const parentKey = continues ? (previous.saved ? previous.key : previous.parentKey) : undefined;
  const parentTokens = continues ? (previous.saved ? previous.nTokens : previous.parentTokens) : undefined;
  const fingerprint = deps.backends.at(plan.slot.backend).knownFingerprint(analysis.model);
  deps.pool.fill(plan.slot, {
    key: analysis.key,
    model: analysis.model,
    blocks: analysis.blocks,
    prefixLen: analysis.prefixLen,
    big: analysis.big,
    saved: false,
    ...(nTokens !== undefined && { nTokens }),
    ...(parentKey !== undefined && { parentKey }),
    ...(parentTokens !== undefined && { parentTokens }),
    ...(fingerprint !== undefined && { fingerprint }),
    ...(session !== undefined && { session }),
    turns: continues ? (previous.turns ?? 1) + 1 : 1,
  });
}

/**
 * The slot was believed to hold this conversation, yet the backend reused (almost) nothing: it restarted, or cleared
 * the slot itself. Whatever the other slots of that backend were believed to hold is then doubtful too, and so is
 * the model identity: forget both, so the next requests restore from disk instead of trusting empty slots.
 */
export function noticeLostSlot(
  deps: Pick<GenerationDeps, 'backends' | 'log'>,
  plan: SlotPlan,
  outcome: ForwardOutcome,
): void {
  const t = outcome.timings;
  if (!plan.resident || !outcome.completed || t?.cache_n === undefined || t.prompt_n === undefined) return;
  if (t.prompt_n < LOST_SLOT_MIN_PROMPT || t.cache_n >= LOST_SLOT_MAX_REUSE) return;
  const backend = deps.backends.at(plan.slot.backend);
  // A backend that clears idle slots can clear one under a plan made just before (another request's launch).
  if (backend.behaviour.clearsIdleSlots()) return;
  deps.log.warn(
    { backend: backend.url, slot: plan.slot.id, cache_n: t.cache_n, prompt_n: t.prompt_n },
    'a slot had lost the conversation it was believed to hold (backend restarted?); forgetting what its slots held',
  );
  backend.forget(); // its idle slots: not plan.slot, which its request holds
}

/**
 * A request sent unpinned for the server's RAM cache (SlotPlan.fromServerCache) reused less than half of what that
 * cache was believed to hold. Either the server restarted (its task ids say so: it is then forgotten as a whole), or
 * the cache had evicted it (it is bounded, and other clients fill it too): say so, as the turn cost a cold prefill,
 * and lower the limit the proxy's model of that cache works with.
 */
export async function noticeServerCacheMiss(
  deps: Pick<GenerationDeps, 'backends' | 'rescues' | 'log'>,
  plan: SlotPlan,
  outcome: ForwardOutcome,
  model: string,
  room?: RoomAfter,
): Promise<void> {
  const hit = plan.fromServerCache;
  const expected = hit?.content.nTokens;
  const reused = outcome.timings?.cache_n;
  if (!hit || !expected || !outcome.completed || reused === undefined || reused >= expected / 2) return;
  if (await startedAgain(deps, plan.slot.backend, model)) return;
  const { url, ramCache } = deps.backends.at(plan.slot.backend);
  if (room && room.free < expected) {
    // The load found no room beside the other slots (see kv-room.ts): the RAM cache may well have held it.
    deps.log.warn(
      { backend: url, key: shortKey(hit.content.key), cache_n: reused, expected, free_cells: room.free },
      "no room in the KV buffer to load a conversation from the server's RAM cache; it was prefilled again",
    );
    return;
  }
  ramCache.noteMiss(hit);
  deps.rescues.distrust();
  deps.log.warn(
    {
      backend: url,
      key: shortKey(hit.content.key),
      cache_n: reused,
      expected,
      ram_cache_mib: Math.round(ramCache.limitMiB),
    },
    "the server's RAM cache no longer held a conversation it was believed to hold; it was prefilled again (ram_cache_mib: the size the proxy counts on from now on)",
  );
}

/** Reuse below this many tokens on a resident slot means it was empty (a template prefix can match by chance). */
const LOST_SLOT_MAX_REUSE = 16;
/** Only a prompt this long makes the missing reuse meaningful. */
const LOST_SLOT_MIN_PROMPT = 64;

/**
 * Behind llama-swap or router mode, a request for another model is being handled whose load would unload this one
 * (in router mode only at `--models-max`, see Backend.wouldUnloadFor): this model is about to be unloaded.
 */
export function swapComing(
  deps: Pick<GenerationDeps, 'backends' | 'pending'>,
  backend: number,
  model: string,
): boolean {
  const at = deps.backends.at(backend);
  const kind = at.client.kind;
  if (kind !== 'llama-swap' && kind !== 'router') return false;
  return deps.pending.othersThan(model).some((other) => at.wouldUnloadFor(other));
}
