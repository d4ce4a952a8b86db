/**
 * Keeping the proxy's picture of the slots true to the server's (issue: trust nothing the server did not confirm).
 *
 * - `confirmResidency`: before a request is pinned to a slot believed to hold its conversation, ask `GET /slots`
 *   when the backend may have changed; if the slot lost the conversation, turn the plan into a restore from disk.
 * - `startedAgain`, `lookAtSlots`: the looks at `GET /slots` the other steps share, and what any answer teaches.
 *
 * What a launch on a backend that clears idle slots does first is in before-launch.ts, how a task is followed to its
 * slot in launch-tracking.ts, and when the server's RAM cache stands in for disk in server-ram-tier.ts.
 */
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import { judgeSlot, lastTaskShown, parseSlots } from '../slots/slot-check.js';
import { kvRoomOf } from '../slots/kv-room.js';
import type { ObservedSlots, SlotVerdict } from '../slots/slot-check.js';
import type { DiskMatch, SlotContent, SlotPlan } from '../slots/slot-state.js';
import type { RequestLog } from '../http/request-log.js';
import type { Backend } from '../backend/backend.js';
import type { GenerationDeps } from './deps.js';

/** What keeping the picture true needs. */
export type SlotTruthDeps = Pick<
  GenerationDeps,
  'backends' | 'pool' | 'index' | 'diskMatch' | 'answerSaver' | 'bookedSaves' | 'launchGate' | 'rescues' | 'log'
>;
export type RestoreWorthIt = (match: DiskMatch, slotLcp: number) => boolean;

/**
 * A backend the proxy has not heard from for this long may have restarted (a real model takes longer than this to
 * load again), slept, or served someone else.
 */
export const RECHECK_AFTER_QUIET_MS = 1000;
const SLOTS_TIMEOUT_MS = 2000;

export async function confirmResidency(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: PromptAnalysis,
  line: RequestLog,
  restoreWorthIt: RestoreWorthIt,
): Promise<void> {
  const { slot } = plan;
  const backend = deps.backends.at(slot.backend);
  if (!plan.resident || !checkDue(deps, plan)) return;
  const body = await lookAtSlots(backend, analysis.model);
  const observed = parseSlots(body);
  if (!observed) return;
  const group = deps.pool.group(slot.backend, slot.model);
  const verdict = judgeSlot(slot, group, observed, backend.behaviour.clearsIdleSlots());
  line.slotCheck = verdict;
  if (verdict === 'confirmed') {
    if (typeof observed.get(slot.id) === 'number') backend.behaviour.noteSlotKept(slot);
    return;
  }
  applyVerdict(deps, plan, verdict, observed);
  // A restarted server may run another model file: learn its identity again before matching entries to it.
  if (verdict === 'restarted') await backend.fingerprint(analysis.model);
  restoreInstead(deps, plan, analysis, restoreWorthIt);
}

/**
 * Whether the plan's slot still holds what the proxy believes, by a look at `GET /slots` when the backend was quiet
 * for a while (a restart or another client may have emptied it); a slot found otherwise is forgotten as in
 * confirmResidency. True when it holds it, or when nothing says otherwise.
 */
export async function slotStillHolds(deps: SlotTruthDeps, plan: SlotPlan, model: string): Promise<boolean> {
  const backend = deps.backends.at(plan.slot.backend);
  if (backend.behaviour.quietFor() < RECHECK_AFTER_QUIET_MS) return true;
  const observed = parseSlots(await lookAtSlots(backend, model));
  if (!observed) return true;
  const group = deps.pool.group(plan.slot.backend, plan.slot.model);
  const verdict = judgeSlot(plan.slot, group, observed, backend.behaviour.clearsIdleSlots());
  if (verdict === 'confirmed') return true;
  applyVerdict(deps, plan, verdict, observed);
  if (verdict === 'restarted') await backend.fingerprint(model);
  return false;
}

/** The slot no longer holds the conversation: restore it from disk into the slot when an entry is worth it. */
export function restoreInstead(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: PromptAnalysis,
  restoreWorthIt: RestoreWorthIt,
): void {
  plan.resident = undefined;
  const disk = deps.diskMatch(plan.slot.backend, analysis);
  if (disk && restoreWorthIt(disk, 0)) {
    deps.index.pin(disk.key); // as the planner's restores are (runPlan unpins it)
    plan.restore = disk;
  }
}

/** Whether `GET /slots` shows a server started again since the proxy last looked (then forgotten as a whole). */
export async function startedAgain(
  deps: Pick<SlotTruthDeps, 'backends' | 'log'>,
  backendIndex: number,
  model: string,
): Promise<boolean> {
  const backend = deps.backends.at(backendIndex);
  const last = lastTaskShown(await backend.client.slots(model, SLOTS_TIMEOUT_MS));
  if (last === undefined || !backend.behaviour.noteLastTaskShown(last)) return false;
  deps.log.warn({ backend: backend.url }, 'the server started again (its task ids did); forgetting what it held');
  backend.forget();
  await backend.fingerprint(model);
  return true;
}

/**
 * When to ask: the backend may have changed since the proxy last heard from it (quiet for a while: a restart, a
 * sleep), its idle-slot behaviour is not known yet, another task started there after the slot's own on a backend
 * that clears idle slots (it may have cleared the slot, see otherTaskStartedSince), or none of our other requests
 * runs there: then another client may have used the slot meanwhile, and `GET /slots` answers at once (about a
 * millisecond). Under load from our own requests the round trip would wait behind their batches; the save
 * verification and the after-answer check (noticeLostSlot) still catch what slips through there.
 */
function checkDue(deps: SlotTruthDeps, plan: SlotPlan): boolean {
  const backend = plan.slot.backend;
  const { behaviour } = deps.backends.at(backend);
  if (behaviour.quietFor() >= RECHECK_AFTER_QUIET_MS || !behaviour.settled()) return true;
  if (behaviour.clearsIdleSlots() && behaviour.otherTaskStartedSince(plan.slot)) return true;
  return !deps.pool.all().some((slot) => slot.backend === backend && slot.busy && slot !== plan.slot);
}

function applyVerdict(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  verdict: Exclude<SlotVerdict, 'confirmed'>,
  observed: ObservedSlots,
): void {
  const { slot } = plan;
  const backend = deps.backends.at(slot.backend);
  const url = backend.url;
  const lost = slot.content;
  deps.pool.forget(slot);
  if (verdict === 'cleared-idle') {
    // What the proxy had not saved yet went into the server's RAM cache with the clearing.
    if (lost) noteClearedIntoRam(deps, slot.backend, lost);
    backend.noteClearsIdleSlots('slots check');
    deps.pool.forgetIdleOn(slot.backend, (other) => other.model === slot.model && observed.get(other.id) === 0);
  } else if (verdict === 'restarted') {
    deps.log.warn(
      { backend: url, slot: slot.id },
      'the server lost every slot (restarted?); forgetting what its slots held',
    );
    backend.forget();
  } else {
    deps.log.warn(
      { backend: url, slot: slot.id },
      'the slot holds another conversation (another client?); forgetting it',
    );
  }
}

/** A launch cleared `content` from its slot: the server's RAM cache holds it now, and a rescue may bring it to disk. */
export function noteClearedIntoRam(
  deps: Pick<SlotTruthDeps, 'backends' | 'rescues'>,
  backend: number,
  content: SlotContent,
) {
  deps.backends.at(backend).ramCache.note(content);
  deps.rescues.cleared(content);
}

/**
 * A look at `GET /slots` (undefined when the server cannot say), noting what any answer shows: the task ids the
 * restart check (startedAgain) compares with (answers read while our tasks run may arrive out of order, so only the
 * check made when the backend was quiet acts on a lower one) and the size of the KV buffer.
 */
export async function lookAtSlots(backend: Backend, model: string, timeoutMs = SLOTS_TIMEOUT_MS): Promise<unknown> {
  const body = await backend.client.slots(model, timeoutMs);
  const last = lastTaskShown(body);
  if (last !== undefined) backend.behaviour.noteLastTaskShown(last);
  const cells = kvRoomOf(body)?.nCtx;
  if (cells !== undefined) backend.noteKvCells(model, cells);
  return body;
}
