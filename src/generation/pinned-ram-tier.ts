/**
 * The server's RAM cache as the first tier and disk as the second on a backend that keeps its idle slots (`-np N`: a
 * KV buffer per slot). There a task pinned to a slot that holds another prompt moves that prompt into the RAM cache
 * and takes its own from there when the cache has it: llama-server updates its cache for a task that keeps less than
 * half of its slot (`f_keep` < 0.5), and never for a pin to an empty slot. Checked on the real server with `-np 2`: a
 * 10k-token conversation pushed out of its slot came back from RAM (`cache_n` 10,131) on the slot a title had used.
 *
 * So, before a pinned launch there:
 * - a restore from disk gives way to the RAM cache when the proxy's model of it (ServerRamCacheLedger) is sure that
 *   it holds the conversation further than disk does (an answer left there unsaved): the server loads it while it
 *   takes up the task, where a restore is a slot action of its own, on the request's time;
 * - the slot's content is not saved first when the policy leaves it to the RAM cache (RamRescues): the launch moves it
 *   there, as the server alone would, and a rescue writes it to disk within the loss window unless its conversation
 *   continues first.
 * Where the slot is empty, the task keeps half of it, or a restore from disk stays in the plan (a slot action moves
 * nothing into the RAM cache), nothing changes.
 */
import { lcpBlocks } from '../prompt/block-match.js';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import type { DiskMatch, SlotContent, SlotPlan } from '../slots/slot-state.js';
import type { GenerationDeps } from './deps.js';
import { noteClearedIntoRam, slotStillHolds } from './slot-truth.js';
import { keepsWithoutSwaps, loadFromServerRam } from './server-ram-tier.js';
import type { SlotTruthDeps } from './slot-truth.js';

export type PinnedRamDeps = SlotTruthDeps & Pick<GenerationDeps, 'policy'>;

/**
 * Whether the RAM tier is reached by pins on this backend: a plain llama-server that keeps idle slots
 * (keepsWithoutSwaps), under a policy that uses that tier.
 */
export function ramTierByPin(deps: PinnedRamDeps, backendIndex: number): boolean {
  return deps.policy.leavesToServerRam && keepsWithoutSwaps(deps.backends.at(backendIndex));
}

/**
 * Before a pinned launch on a backend that keeps idle slots (see above), under a policy that uses the server's RAM
 * cache as a tier (the seed's restores every match from disk and saves every answer, as the Python proxy does).
 * Resolves with the content the launch will move into the RAM cache (see noteLaunch).
 */
export async function reachRamByPin(
  deps: PinnedRamDeps,
  plan: SlotPlan,
  analysis: Pick<PromptAnalysis, 'model' | 'big' | 'blocks'>,
): Promise<SlotContent | undefined> {
  const backend = deps.backends.at(plan.slot.backend);
  if (plan.resident || plan.unpinned || !ramTierByPin(deps, plan.slot.backend)) return undefined;
  const held = plan.slot.content;
  if (!held || !movesIntoRam(held, analysis.blocks)) return undefined;
  // A pin to a slot the server has emptied (a restart, another client) reaches no RAM cache.
  if (!(await slotStillHolds(deps, plan, analysis.model))) return undefined;
  if (analysis.big) loadFromRamInstead(deps, plan, analysis, held);
  if (plan.restore) return undefined;
  const tokens = held.nTokens;
  const leftThere =
    deps.rescues.leftToRam(held) && tokens !== undefined && backend.ramCache.hasRoom(held.model, tokens);
  if (plan.saveFirst === held && leftThere) plan.saveFirst = undefined;
  return held;
}

/**
 * A task is sent pinned on a backend that keeps idle slots: the content it pushes out (reachRamByPin) enters the RAM
 * cache, then, with `--cache-idle-slots` (on by default), a copy of every other idle slot's content (the slot keeps
 * it). The proxy's model of the cache counts the copies against its limit (see noteCopy), so that it does not believe
 * entries they pushed out.
 */
export function noteLaunch(deps: PinnedRamDeps, plan: SlotPlan, pushedOut: SlotContent | undefined): void {
  const backend = deps.backends.at(plan.slot.backend);
  if (!ramTierByPin(deps, plan.slot.backend)) return;
  if (pushedOut) noteClearedIntoRam(deps, plan.slot.backend, pushedOut);
  for (const slot of deps.pool.group(plan.slot.backend, plan.slot.model))
    if (slot !== plan.slot && slot.content && !backend.behaviour.launched(slot))
      backend.ramCache.noteCopy(slot.content);
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

/**
 * The request's conversation from the RAM cache rather than from disk, when the model is sure the cache has it once
 * the server has moved the slot's content `held` there (which it does first), and it holds more of it than disk does.
 * Where disk has as much, the restore stays: it brings back exactly that state, whereas the server takes from its
 * cache the first state of the conversation (oldest first) that holds a larger share of itself and of the prompt
 * than the ones before it, and an older state kept there can come first: a copy of an idle slot, which a newer state
 * replaces only when its tokens continue it exactly (a reply's tokens as generated often differ from the same text
 * tokenized in the next prompt). Seen on the real bench: a turn brought back 2,661 of its 3,146 tokens.
 */
function loadFromRamInstead(
  deps: PinnedRamDeps,
  plan: SlotPlan,
  analysis: Pick<PromptAnalysis, 'model' | 'blocks'>,
  held: SlotContent,
): void {
  const backend = deps.backends.at(plan.slot.backend);
  const hit = backend.ramCache.find(analysis.model, analysis.blocks, held.nTokens ?? 0);
  const disk = plan.restore;
  if (!hit?.sure || (disk && !holdsMore(hit.content, disk, analysis.blocks))) return;
  loadFromServerRam(deps, plan, hit);
}

/**
 * Whether `held` brings back more of the request's conversation than the disk entry: it matches more of the prompt,
 * or as many blocks (a turn adds less than a block) and more tokens as another state (a later one).
 */
function holdsMore(held: SlotContent, disk: DiskMatch, blocks: readonly string[]): boolean {
  const lcp = lcpBlocks(held.blocks, blocks);
  if (lcp !== disk.lcp) return lcp > disk.lcp;
  return held.key !== disk.key && (held.nTokens ?? 0) > (disk.tokens ?? Infinity);
}
