/**
 * Keeping the proxy's picture of the slots true to the server's (issue: trust nothing the server did not confirm).
 *
 * - `confirmResidency`: before a request is pinned to a slot believed to hold its conversation, ask `GET /slots`
 *   when the backend may have changed; if the slot lost the conversation, turn the plan into a restore from disk.
 * - `beforeTaskStart`: on a backend that clears its idle slots when a task starts (llama-server's default
 *   configuration), save what the other idle slots alone hold, then forget their contents.
 */
import { modelScopedPath } from '../backend/backend-kind.js';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import { judgeSlot, parseSlots } from '../slots/slot-check.js';
import type { ObservedSlots, SlotVerdict } from '../slots/slot-check.js';
import type { DiskMatch, SlotPlan } from '../slots/slot-state.js';
import type { ProxyContext } from './context.js';
import type { RequestLog } from './request-log.js';

/**
 * A backend the proxy has not heard from for this long may have restarted (a real model takes longer than this to
 * load again), slept, or served someone else.
 */
export const RECHECK_AFTER_QUIET_MS = 1000;
const SLOTS_TIMEOUT_MS = 2000;

export async function confirmResidency(
  ctx: ProxyContext,
  plan: SlotPlan,
  analysis: PromptAnalysis,
  line: RequestLog,
  restoreWorthIt: ((match: DiskMatch, slotLcp: number) => boolean) | undefined,
): Promise<void> {
  const { slot } = plan;
  const backend = slot.backend;
  if (!plan.resident || !checkDue(ctx, plan)) return;
  const client = ctx.clients[backend]!;
  const observed = await client
    .getJson(modelScopedPath(client.kind ?? 'llama-server', analysis.model, '/slots'), SLOTS_TIMEOUT_MS)
    .then(parseSlots, () => undefined);
  if (!observed) return;
  const group = ctx.pool.group(backend, slot.model);
  const verdict = judgeSlot(slot, group, observed);
  line.slotCheck = verdict;
  if (verdict === 'confirmed') {
    if (typeof observed.get(slot.id) === 'number') ctx.behaviour.noteSlotKept(backend, slot);
    return;
  }
  applyVerdict(ctx, plan, verdict, observed);
  plan.resident = undefined;
  // A restarted server may run another model file: learn its identity again before matching entries to it.
  if (verdict === 'restarted') await ctx.fingerprint(backend, analysis.model);
  const disk = ctx.diskMatch(backend, analysis);
  if (disk && (!restoreWorthIt || restoreWorthIt(disk, 0))) {
    ctx.index.pin(disk.key); // as the planner's restores are (runPlan unpins it)
    plan.restore = disk;
  }
}

/**
 * When to ask: the backend may have changed since the proxy last heard from it (quiet for a while: a restart, a
 * sleep), its idle-slot behaviour is not known yet, or none of our other requests runs there: then another client
 * may have used the slot meanwhile, and `GET /slots` answers at once (about a millisecond). Under load from our own
 * requests the round trip would wait behind their batches; the save verification and the after-answer check
 * (noticeLostSlot) still catch what slips through there.
 */
function checkDue(ctx: ProxyContext, plan: SlotPlan): boolean {
  const backend = plan.slot.backend;
  if (ctx.behaviour.quietFor(backend) >= RECHECK_AFTER_QUIET_MS || !ctx.behaviour.settled(backend)) return true;
  return !ctx.pool.all().some((slot) => slot.backend === backend && slot.busy && slot !== plan.slot);
}

function applyVerdict(ctx: ProxyContext, plan: SlotPlan, verdict: Exclude<SlotVerdict, 'confirmed'>, observed: ObservedSlots): void {
  const { slot } = plan;
  const backend = slot.backend;
  const url = ctx.clients[backend]!.url;
  slot.content = undefined;
  if (verdict === 'cleared-idle') {
    if (ctx.behaviour.noteClearsIdleSlots(backend)) {
      ctx.log.warn({ backend: url },
        'the server clears idle slots when a task starts (llama-server default: unified KV, --cache-idle-slots); ' +
        'saving idle slots before each task and restoring from disk from now on');
    }
    for (const other of ctx.pool.group(backend, slot.model)) if (!other.busy && observed.get(other.id) === 0) other.content = undefined;
  } else if (verdict === 'restarted') {
    ctx.log.warn({ backend: url, slot: slot.id }, 'the server lost every slot (restarted?); forgetting what its slots held');
    for (const other of ctx.pool.all()) if (other.backend === backend && !other.busy) other.content = undefined;
    ctx.forgetBackend(backend);
  } else {
    ctx.log.warn({ backend: url, slot: slot.id }, 'the slot holds another conversation (another client?); forgetting it');
  }
}

/**
 * The request's task is about to start on `plan.slot`. On a backend that clears its other idle slots then, their
 * unsaved content is saved first (write-behind normally did it already) and their contents forgotten.
 */
export async function beforeTaskStart(ctx: ProxyContext, plan: SlotPlan, line: RequestLog): Promise<void> {
  const backend = plan.slot.backend;
  ctx.behaviour.noteTaskStart(backend, plan.slot);
  if (!ctx.behaviour.clearsIdleSlots(backend)) return;
  if (ctx.writeBehind) line.clearingSaves = await ctx.writeBehind.saveBeforeClearing(backend, plan.slot);
  for (const other of ctx.pool.all()) {
    if (other.backend === backend && other !== plan.slot && !other.busy) other.content = undefined;
  }
}
