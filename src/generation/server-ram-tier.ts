/**
 * When the server's own RAM cache stands in for the disk tier: a request sent without a pin so that the server's
 * lookup finds its conversation (leavePlacementToServer), and an answer left there rather than saved at its end
 * (leavesToServerRam; a rescue brings it to disk within the loss window, see RamRescues).
 */
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import type { SlotPlan } from '../slots/slot-state.js';
import type { Backend } from '../backend/backend.js';
import type { RamCacheHit } from '../backend/server-ram-cache.js';
import { RECHECK_AFTER_QUIET_MS, startedAgain } from './slot-truth.js';
import type { SlotTruthDeps } from './slot-truth.js';

/**
 * On a backend that clears idle slots, the server's RAM cache is the first tier and disk the second: a request goes
 * without a pin when the server's own lookup can serve it (a pin to a slot the server has cleared skips that lookup).
 * - A small request (a title, an autocompletion): its slot was cleared by the last launch anyway, and the RAM cache
 *   holds the prefix it shares with earlier small prompts (chat template, instructions).
 * - A big one whose conversation the RAM cache holds (see ServerRamCacheLedger), at least as far as disk does: the
 *   server loads it within the iteration that takes up the task, where a restore from disk costs a slot action
 *   of its own. When the model cannot tell whether the entry is still there (sizes not learnt yet), only if disk has
 *   nothing of it: a miss must then cost no more than the cold prefill the request faces anyway.
 * - A big one that neither tier holds (cold): the server puts it on an idle slot, or on the first slot to free up.
 *   Pinned, it could wait behind a small task the server has just put on that very slot, and a small request that
 *   comes next would meet its prefill's first batch (hundreds of milliseconds) instead of finding it done. Nor does a
 *   pin to a low slot pay where it would help the batch order (see batchPlace): pinned there when every task of ours
 *   ran on a known slot, the real bench's noise workload answered its small requests (sent without a pin, which the
 *   server then put above the cold prefill) 1.6 × later, and a turn whose conversation a rescue was saving at that
 *   moment (in no tier the proxy knew of, but in a slot the server's own choice finds) was prefilled whole.
 * When the backend was quiet for a while, `GET /slots` first tells whether it started again since (its RAM cache
 * then lost): its task ids start again from zero.
 * Called inside the launch gate, after confirmResidency.
 */
export async function leavePlacementToServer(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: PromptAnalysis,
): Promise<void> {
  const backend = deps.backends.at(plan.slot.backend);
  if (plan.resident || !backend.behaviour.clearsIdleSlots()) return;
  if (!analysis.big) {
    if (!plan.restore) plan.unpinned = true;
    return;
  }
  const hit = backend.ramCache.find(analysis.model, analysis.blocks, tokensClearedByLaunch(deps, plan));
  const disk = plan.restore;
  if (!hit) {
    if (!disk) plan.unpinned = true; // cold
    return;
  }
  if (disk && !(hit.sure && hit.content.blocks.length >= disk.lcp)) return;
  if (
    backend.behaviour.quietFor() >= RECHECK_AFTER_QUIET_MS &&
    (await startedAgain(deps, plan.slot.backend, analysis.model))
  )
    return;
  plan.unpinned = true;
  loadFromServerRam(deps, plan, hit);
}

/**
 * The plan takes its conversation from the server's RAM cache (`hit`) instead of a restore from disk: the server will
 * have loaded it into the slot, and nothing need rescue it.
 */
export function loadFromServerRam(
  deps: Pick<SlotTruthDeps, 'backends' | 'rescues' | 'index'>,
  plan: SlotPlan,
  hit: RamCacheHit,
): void {
  deps.backends.at(plan.slot.backend).ramCache.take(hit.content);
  deps.rescues.taken(hit.content);
  if (plan.restore) {
    deps.index.unpin(plan.restore.key); // the planner's pin (see pinPlannedFile): nothing restores it now
    plan.restore = undefined;
  }
  plan.fromServerCache = hit;
}

/** Tokens the request's launch moves into the RAM cache: what the backend's idle slots hold. */
function tokensClearedByLaunch(deps: SlotTruthDeps, plan: SlotPlan): number {
  const { behaviour } = deps.backends.at(plan.slot.backend);
  return deps.pool
    .all()
    .filter((slot) => slot.backend === plan.slot.backend && !behaviour.launched(slot))
    .reduce((sum, slot) => sum + (slot.content?.nTokens ?? 0), 0);
}

/**
 * Whether a big task's end state may be left to the server's RAM cache rather than saved at its end (RamRescues):
 * when the policy and the loss window allow it, while the RAM cache has room to spare for its `tokens` (half its
 * limit), on a backend that clears idle slots (each launch moves them into the RAM cache) while its KV buffer has room
 * for every slot to hold a conversation that size (a rescue loads it back beside the others: where it does not, the
 * rescues wait for room while tasks run, past the loss window; see slot-room.ts), or on a plain server that keeps them
 * (a pinned launch on its slot moves it there: keepsWithoutSwaps). Every generation route the proxy pins replays
 * without generating: the real server honours `n_predict: 0` on the chat, completion and Responses routes alike (one
 * token, whatever the body's `max_tokens` or `max_output_tokens`). And only while that pays on the backend (see
 * RamTierPayoff): called once per big task, as it decides for that task.
 */
export function leavesToServerRam(
  deps: Pick<SlotTruthDeps, 'backends' | 'rescues' | 'pool'>,
  backendIndex: number,
  task: { model: string; tokens: number },
): boolean {
  const backend = deps.backends.at(backendIndex);
  const { behaviour, ramCache } = backend;
  const kvCells = backend.kvCells(task.model);
  const slots = deps.pool.group(backendIndex, task.model).length;
  const clearedWithRoom = behaviour.clearsIdleSlots() && (kvCells === undefined || task.tokens * slots <= kvCells);
  return (
    deps.rescues.enabled &&
    (clearedWithRoom || keepsWithoutSwaps(backend)) &&
    ramCache.hasRoom(task.model, task.tokens) &&
    deps.rescues.leaveNext(backendIndex)
  );
}

/**
 * A plain llama-server seen keeping its idle slots, where the RAM cache is reached through pins (pinned-ram-tier.ts).
 * Behind llama-swap or in router mode a model's unload takes its RAM cache along: what was left there would be lost,
 * and its rescue would load the model again.
 */
export function keepsWithoutSwaps(backend: Backend): boolean {
  return backend.behaviour.keepsIdleSlots() && backend.client.kind === 'llama-server';
}
