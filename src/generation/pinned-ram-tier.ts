/**
 * The server's RAM cache as the first tier and disk as the second on a backend that keeps its idle slots (`-np N`: a
 * KV buffer per slot). There a task pinned to a slot that holds another prompt moves that prompt into the RAM cache
 * and takes its own from there when the cache has it: llama-server updates its cache for a task that keeps less than
 * half of its slot (`f_keep` < 0.5), and never for a pin to an empty slot. Checked on the real server with `-np 2`: a
 * 10k-token conversation pushed out of its slot came back from RAM (`cache_n` 10,131) on the slot a title had used.
 *
 * So, before a pinned launch there:
 * - a restore from disk gives way to the RAM cache when the proxy's model of it (ServerRamCacheLedger) is sure that
 *   it holds the conversation at least as far: the server loads it while it takes up the task, where a restore is a
 *   slot action of its own, on the request's time;
 * - the slot's content is not saved first when the policy leaves it to the RAM cache (RamRescues): the launch moves it
 *   there, as the server alone would, and a rescue writes it to disk within the loss window unless its conversation
 *   continues first.
 * Where the slot is empty, the task keeps half of it, or a restore from disk stays in the plan (a slot action moves
 * nothing into the RAM cache), nothing changes.
 */
import { lcpBlocks } from '../prompt/block-match.js';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import type { SlotContent, SlotPlan } from '../slots/slot-state.js';
import type { GenerationDeps } from './deps.js';
import { RECHECK_AFTER_QUIET_MS, startedAgain } from './slot-truth.js';
import type { SlotTruthDeps } from './slot-truth.js';

export type PinnedRamDeps = SlotTruthDeps & Pick<GenerationDeps, 'policy'>;

/**
 * Before a pinned launch on a backend that keeps idle slots (see above), under a policy that uses the server's RAM
 * cache as a tier (the seed's restores every match from disk and saves every answer, as the Python proxy does).
 * Resolves with the content the launch will move into the RAM cache: noted there once the task is sent
 * (noteClearedIntoRam).
 */
export async function reachRamByPin(
  deps: PinnedRamDeps,
  plan: SlotPlan,
  analysis: Pick<PromptAnalysis, 'model' | 'big' | 'blocks'>,
): Promise<SlotContent | undefined> {
  const backend = deps.backends.at(plan.slot.backend);
  const held = plan.slot.content;
  if (!deps.policy.leavesToServerRam || plan.resident || plan.unpinned || !backend.behaviour.keepsIdleSlots())
    return undefined;
  if (!held || !movesIntoRam(held, analysis.blocks)) return undefined;
  if (analysis.big) await loadFromRamInstead(deps, plan, analysis);
  if (plan.restore) return undefined;
  const tokens = held.nTokens;
  const leftThere = deps.rescues.leftToRam(held) && tokens !== undefined && backend.ramCache.hasRoom(held.model, tokens);
  if (plan.saveFirst === held && leftThere) plan.saveFirst = undefined;
  return held;
}

/**
 * Whether a task pinned to a slot holding `content` moves it into the RAM cache: the task keeps less than half of
 * it. A prompt that shares no block with it shares a chat template's first tokens at most; one that shares blocks
 * must keep well under half of them (blocks are not tokens: the margin covers the difference).
 */
export function movesIntoRam(content: SlotContent, blocks: readonly string[]): boolean {
  if (content.nTokens === 0) return false;
  const lcp = lcpBlocks(content.blocks, blocks);
  return lcp === 0 || lcp < content.blocks.length * SURELY_UNDER_HALF;
}

const SURELY_UNDER_HALF = 0.4;

/** The request's conversation from the RAM cache rather than from disk, when the model is sure the cache has it. */
async function loadFromRamInstead(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: Pick<PromptAnalysis, 'model' | 'blocks'>,
): Promise<void> {
  const backend = deps.backends.at(plan.slot.backend);
  const hit = backend.ramCache.find(analysis.model, analysis.blocks);
  const disk = plan.restore;
  if (!hit?.sure || (disk && hit.content.blocks.length < disk.lcp)) return;
  // Quiet for a while, the server may have restarted (its RAM cache lost): its task ids tell.
  if (
    backend.behaviour.quietFor() >= RECHECK_AFTER_QUIET_MS &&
    (await startedAgain(deps, plan.slot.backend, analysis.model))
  )
    return;
  backend.ramCache.take(hit.content);
  deps.rescues.taken(hit.content);
  if (disk) {
    deps.index.unpin(disk.key); // the planner's pin (see pinPlannedFile): nothing restores it now
    plan.restore = undefined;
  }
  plan.fromServerCache = hit;
}
