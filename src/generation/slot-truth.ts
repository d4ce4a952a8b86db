/**
 * Keeping the proxy's picture of the slots true to the server's (issue: trust nothing the server did not confirm).
 *
 * - `confirmResidency`: before a request is pinned to a slot believed to hold its conversation, ask `GET /slots`
 *   when the backend may have changed; if the slot lost the conversation, turn the plan into a restore from disk.
 * - `beforeTaskStart`: on a backend that clears its idle slots when a task starts (llama-server's default
 *   configuration), save what the other idle slots alone hold, then forget their contents; `enterLaunchGate` and
 *   `leaveLaunchGateWhenRunning` keep such launches one at a time.
 */
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import {
  judgeSlot,
  lastTaskShown,
  parseSlots,
  runningTasks,
  slotEndedSince,
  slotOfMarkedTask,
  slotOfNewTask,
  slotLeftBy,
  slotProcessing,
  slotTokensLeft,
} from '../slots/slot-check.js';
import type { GatePass, LaunchGate } from '../slots/launch-gate.js';
import { kvRoomOf } from '../slots/kv-room.js';
import type { ObservedSlots, RunningTask, SlotVerdict } from '../slots/slot-check.js';
import type { DiskMatch, SlotContent, SlotPlan, SlotState } from '../slots/slot-state.js';
import type { RequestLog } from '../http/request-log.js';
import type { CacheOpResult } from '../slots/slot-cache.js';
import type { Backend } from '../backend/backend.js';
import type { RamCacheHit } from '../backend/server-ram-cache.js';
import type { GenerationDeps } from './deps.js';
import type { ForwardOutcome } from './forward.js';
import { tokensLeftInSlot } from './sse-tap.js';

/** What keeping the picture true needs. */
export type SlotTruthDeps = Pick<
  GenerationDeps,
  'backends' | 'pool' | 'index' | 'diskMatch' | 'answerSaver' | 'bookedSaves' | 'launchGate' | 'rescues' | 'log'
>;
type RestoreWorthIt = (match: DiskMatch, slotLcp: number) => boolean;

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
function restoreInstead(
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

/**
 * The request's task is about to start on `plan.slot`. On a backend that clears its other idle slots then, their
 * unsaved content is saved first (write-behind normally did it already), unless it is left to the server's RAM
 * cache (RamRescues), and their contents forgotten. Resolves with the saves made.
 *
 * The check for tasks of ours that the server has just finished comes after the saves, right before the launch: a
 * task that finished while the saves ran would otherwise be cleared unsaved (seen on the real server: a 5 ms save
 * was enough). So the two alternate until a round finds nothing new to save and no task of ours just finished.
 */
export async function beforeTaskStart(
  deps: SlotTruthDeps,
  plan: Pick<SlotPlan, 'slot' | 'unpinned'>,
  model: string,
): Promise<CacheOpResult[]> {
  const backend = plan.slot.backend;
  const { behaviour } = deps.backends.at(backend);
  behaviour.noteTaskStart(plan.slot, plan.unpinned === true);
  if (!behaviour.clearsIdleSlots()) return [];
  const running = (slot: SlotState) => slot === plan.slot || behaviour.launched(slot);
  const saves: CacheOpResult[] = [];
  const tried = new Set<SlotContent>();
  for (let round = 0; round < MAX_SAVE_ROUNDS; round++) {
    // Left to the RAM cache: the launch moves it there, and a rescue saves it within the loss window if need be.
    for (const slot of deps.pool.all())
      if (slot.backend === backend && deps.rescues.leftToRam(slot.content)) tried.add(slot.content!);
    const triedBefore = tried.size;
    saves.push(...(await deps.answerSaver.saveBeforeClearing(backend, running, tried)));
    const someJustFinished = await letFinishedTasksEnd(deps, plan, model);
    if (!someJustFinished && tried.size === triedBefore) break;
  }
  // Idle at the server: ours too when a request holds the slot but waits at the gate (its task not sent yet).
  // What stays unsaved there goes into the server's RAM cache with the clearing (see ServerRamCacheLedger).
  for (const content of deps.pool.forgetClearedOn(backend, running)) noteClearedIntoRam(deps, backend, content);
  return saves;
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
 * Rounds of "save, then look for tasks that finished meanwhile" before a launch: a few ms each, or up to
 * FINISHING_WAIT_MS when one waits for a task that is ending, so a launch waits 2 s at the most.
 */
const MAX_SAVE_ROUNDS = 4;

/**
 * A task of ours may have ended on the server a moment before the proxy has read the end of its answer: the launch
 * about to happen would clear that slot before its content could be recorded and saved. For such a task (in flight
 * on a big prompt where the proxy knows, past its prefill), the launch books its save for its end (BookedSaves), so
 * the server runs the save before the launch: one booking per backend at a time. A save booked by this very launch
 * for a task `GET /slots` shows ended already is waited for. The tasks without a booking are looked for too:
 * `GET /slots` shows those of them that ended (no longer processing), and those a few tokens from their `n_predict`,
 * which would end while the server takes up the launch (one iteration of its loop: a decode step, or a whole
 * prefill batch); their requests are given a moment to end. True when there were some. A task that stops at an
 * end-of-generation token cannot be foreseen there. With none to look for, no `GET /slots`, whose answer waits for
 * one iteration of the server's loop (a whole prefill batch when a task has just started).
 */
async function letFinishedTasksEnd(deps: SlotTruthDeps, plan: Pick<SlotPlan, 'slot'>, model: string): Promise<boolean> {
  const backend = deps.backends.at(plan.slot.backend);
  // Our tasks that may end before this launch: booked now if one can be, else looked for below.
  const bookedNow: SlotState[] = [];
  const unbooked: SlotState[] = [];
  for (const slot of deps.pool.all()) {
    if (slot.backend !== backend.index || slot === plan.slot || !backend.behaviour.mayEndSoon(slot)) continue;
    // Booked already, or left to the RAM cache (its end may be cleared unsaved).
    if (deps.bookedSaves.has(slot) || deps.rescues.leavesToRam(slot)) continue;
    if (deps.bookedSaves.book(slot)) bookedNow.push(slot);
    else unbooked.push(slot);
  }
  if (unbooked.length === 0 && bookedNow.length === 0) return false;
  const body = await lookAtSlots(backend, model);
  // Booked just now for a task that has ended already: the save runs at once, but this launch's own task could
  // reach the server first on its other connection (a reply that stopped at its first tokens): wait for the save.
  const endedBooked = bookedNow.filter((slot) => slotProcessing(body, slot.id) === false);
  await Promise.all(endedBooked.map((slot) => deps.bookedSaves.answered(slot) ?? Promise.resolve()));
  const finished = unbooked.filter((slot) => {
    if (slotProcessing(body, slot.id) === false) return true;
    const left = slotTokensLeft(body, slot.id);
    return left !== undefined && left <= FINISHING_SOON_TOKENS;
  });
  await Promise.all(finished.map((slot) => backend.behaviour.whenEnded(slot, FINISHING_WAIT_MS)));
  return finished.length > 0;
}

/**
 * A big task of ours is past its prefill on a slot the proxy knows: while other requests of ours hold or wait for
 * slots of the backend, or one started there within the last CONTENTION_WINDOW_MS (a client between two requests),
 * one of their launches will likely come before this conversation's next turn and clear the slot, so its save is
 * booked now, far from its end (see BookedSaves). Alone on the backend, nothing is booked: the conversation may
 * continue at once, and write-behind saves it in the idle time otherwise.
 */
export function bookSaveUnderContention(
  deps: Pick<SlotTruthDeps, 'pool' | 'bookedSaves' | 'backends' | 'rescues'>,
  slot: SlotState,
): void {
  if (deps.rescues.leavesToRam(slot)) return;
  const others =
    deps.pool.waiting() > 0 ||
    deps.pool
      .all()
      .some((other) => other.backend === slot.backend && other !== slot && other.busy && !other.background) ||
    deps.backends.at(slot.backend).behaviour.otherStartedWithin(slot, CONTENTION_WINDOW_MS);
  if (others) deps.bookedSaves.book(slot);
}

const CONTENTION_WINDOW_MS = 1000;

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

/**
 * A generating task this close to its `n_predict` counts as finishing: a few decode steps (milliseconds on a GPU or
 * a small model, a fraction of a second on a slow one) against a lost conversation prefilled again.
 */
const FINISHING_SOON_TOKENS = 16;

/** How long a request whose task the server has finished may take to reach its end at the proxy. */
const FINISHING_WAIT_MS = 500;

/**
 * On a backend that clears idle slots, wait for the launch gate (see launch-gate.ts). Another request's task may
 * have started meanwhile and cleared this request's slot: a plan that counted on the slot's content becomes a
 * restore of what that launch saved. Resolves with the pass to give back once the task runs (undefined elsewhere).
 */
export async function enterLaunchGate(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: PromptAnalysis,
  restoreWorthIt: RestoreWorthIt,
): Promise<GatePass | undefined> {
  const backend = plan.slot.backend;
  if (!deps.backends.at(backend).behaviour.clearsIdleSlots()) return undefined;
  const pass = await deps.launchGate.enter(backend);
  if (plan.resident && !plan.slot.content) restoreInstead(deps, plan, analysis, restoreWorthIt);
  return pass;
}

/**
 * A task pinned to its slot was sent: leave the gate once the server shows it running there (GET /slots), or the
 * answer began or ended, or after a deadline (the gate must never stay shut).
 */
export async function leaveLaunchGateWhenRunning(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  model: string,
  answered: Promise<unknown>,
  pass: GatePass,
): Promise<void> {
  const backend = deps.backends.at(plan.slot.backend);
  const over = settled(answered);
  const deadline = performance.now() + LAUNCH_WAIT_MS;
  const pause = pollPauses(deps.launchGate, backend.index, answered);
  try {
    while (!over.now && performance.now() < deadline) {
      const body = await lookAtSlots(backend, model, LAUNCH_WAIT_MS);
      if (slotProcessing(body, plan.slot.id) !== false) return; // running, or /slots cannot tell
      await pause();
    }
  } finally {
    pass.release();
  }
}

/**
 * A task sent without a pin (SlotPlan.unpinned) runs on a slot the server chose. The gate opens at once, so that a
 * small request arriving meanwhile reaches the server as soon as it would without the proxy; a big request's launch
 * waits in the gate until every unpinned task before it is found (LaunchGate.placed), since it might be pinned to
 * that very slot, or be told apart from it only by its size; a restore also until the task runs on the server
 * (seen on its slot, else its first byte or its end: LaunchGate.launched), as its launch would clear the restored slot.
 *
 * A big request's slot is found with `GET /slots`: by its mark where it carries one (task-mark.ts, slotOfMarkedTask:
 * the one slot showing it, running or idle). Else, and until the mark shows where there is a baseline: while it
 * runs, the one task not running before the launch (`baseline`, see slotOfNewTask) whose KV holds enough tokens not
 * to be a small task started meanwhile (tokensAtFirstSight); once its answer has ended, the one idle slot with a
 * newer task whose KV holds what the answer left (slotLeftBy); ended before any look showed it running, the one such
 * slot holding at least that many tokens (slotEndedSince). Its slot record then moves there. A small request's slot
 * is not looked for: nothing it leaves is saved. Resolves with false when the slot is not known (a small request,
 * the slot taken by another task already, or, unmarked, another client's task started at the same moment): the
 * request's content is then not known to be anywhere.
 */
export function placeUnpinnedTask(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  analysis: Pick<PromptAnalysis, 'model' | 'big' | 'wordCount'>,
  task: { answered: Promise<ForwardOutcome>; running: Promise<void> },
  pass: GatePass | undefined,
  clues: LaunchClues,
): Promise<boolean> {
  const { answered } = task;
  const { behaviour } = deps.backends.at(plan.slot.backend);
  const where =
    analysis.big && (clues.baseline || clues.mark !== undefined)
      ? findUnpinnedSlot(deps, plan, analysis.model, answered, clues, tokensAtFirstSight(plan, analysis))
      : Promise.resolve(undefined);
  // Until found, and for good when it is not: its record names no real slot (noteEnded forgets it).
  behaviour.noteUnplaced(plan.slot);
  const found = where.then(async (state) => {
    if (!state) return false;
    behaviour.notePlaced(plan.slot);
    bookSaveUnderContention(deps, plan.slot);
    // Found ended, its booked save runs at once: a launch that reached the server first would clear the slot.
    if (state === 'ended') await deps.bookedSaves.answered(plan.slot);
    return true;
  });
  deps.launchGate.notePlacing(plan.slot.backend, found);
  // Launched once `GET /slots` shows it on its slot; when it cannot, once its first byte (or its end) comes.
  const seen = where.then(
    (state) => (state ? undefined : task.running),
    () => task.running,
  );
  deps.launchGate.noteLaunching(plan.slot.backend, Promise.race([task.running, seen]));
  pass?.release();
  return found;
}

/**
 * The fewest tokens an unpinned big task's slot shows once it runs, telling it from a small task started meanwhile:
 * half of what the RAM cache gives back, which is in its KV from the launch; for a cold one, half of its prompt's
 * first batch, which `GET /slots` shows from the launch on (llama-server takes up to `n_batch` prompt tokens at
 * once: 2048 by default, seldom fewer than 512; a prompt makes about a token a word or more).
 */
function tokensAtFirstSight(plan: SlotPlan, analysis: Pick<PromptAnalysis, 'wordCount'>): number {
  const broughtBack = plan.fromServerCache?.content.nTokens;
  return Math.floor((broughtBack ?? Math.min(analysis.wordCount, SMALLEST_FIRST_BATCH)) / 2);
}

const SMALLEST_FIRST_BATCH = 512;

async function findUnpinnedSlot(
  deps: SlotTruthDeps,
  plan: SlotPlan,
  model: string,
  answered: Promise<ForwardOutcome>,
  { baseline, mark }: LaunchClues,
  minTokens: number,
): Promise<'running' | 'ended' | undefined> {
  const { slot } = plan;
  const backend = deps.backends.at(slot.backend);
  const over = settled(answered);
  const deadline = performance.now() + LAUNCH_WAIT_MS;
  const pause = pollPauses(deps.launchGate, backend.index, answered);
  while (performance.now() < deadline) {
    const ended = over.now;
    const body = await lookAtSlots(backend, model, LAUNCH_WAIT_MS);
    const marked = mark === undefined ? undefined : markedSlot(backend, body, mark);
    if (marked) return movedTo(marked.slot, marked.running ? 'running' : 'ended');
    // Not shown yet (or never, by a server that hides the parameters): without a baseline, only the mark can tell.
    if (!baseline) {
      if (ended) return undefined;
      await pause();
      continue;
    }
    if (ended) {
      const left = tokensLeftInSlot((await answered).timings);
      const id = left === undefined ? undefined : slotLeftBy(body, left, baseline.lastTask);
      return movedTo(id, 'ended');
    }
    // Our other tasks in flight whose slot is known (a small unpinned one's record names no real slot).
    const ourPending = deps.pool
      .all()
      .filter(
        (other) => other.backend === slot.backend && other !== slot && backend.behaviour.launchedWhereKnown(other),
      )
      .map((other) => other.id);
    const chosen = slotOfNewTask(baseline.running, runningTasks(body), ourPending, minTokens);
    if (chosen === undefined) return undefined;
    if (chosen !== 'not yet') return movedTo(chosen, 'running');
    const endedOn = slotEndedSince(body, baseline.lastTask, ourPending, minTokens);
    if (endedOn !== undefined) return movedTo(endedOn, 'ended');
    await pause();
  }
  return undefined;

  function movedTo(id: number | undefined, state: 'running' | 'ended') {
    return id !== undefined && deps.pool.moveTo(slot, id) ? state : undefined;
  }
}

/**
 * The pauses between a loop's looks at `GET /slots` for one task (where it runs, whether it runs yet). Each look
 * costs the server CPU time: on a CPU-only machine its answer, and ours, slow the prefill in progress (a look every
 * 5 ms slowed a real 4k-token prefill by 13 to 20 % on the 2-core bench machine, every 20 ms by 2 to 5 %). So the
 * looks come every LAUNCH_POLL_MS only while a request of ours waits to launch on the backend (it waits for this
 * answer); otherwise each pause doubles, up to CALM_POLL_MS, and is cut short when a request comes to launch or the
 * task's answer ends.
 */
function pollPauses(gate: LaunchGate, backend: number, answered: Promise<unknown>): () => Promise<void> {
  const ended = answered.then(
    () => undefined,
    () => undefined,
  );
  let calmLooks = 0;
  return async () => {
    if (gate.someoneWaits(backend)) calmLooks = 0;
    const ms = Math.min(LAUNCH_POLL_MS * 2 ** calmLooks++, CALM_POLL_MS);
    let timer: NodeJS.Timeout | undefined;
    const elapsed = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([elapsed, gate.nextArrival(backend), ended]);
    clearTimeout(timer);
  };
}

/** A view of whether `promise` has settled yet. */
function settled(promise: Promise<unknown>): { now: boolean } {
  const state = { now: false };
  promise.then(
    () => (state.now = true),
    () => (state.now = true),
  );
  return state;
}

/**
 * The slot whose task shows `mark` in a `GET /slots` answer (see slotOfMarkedTask); a sighting tells that the
 * backend shows marks, so later marked launches need no look before them.
 */
export function markedSlot(
  backend: Backend,
  body: unknown,
  mark: number,
): { slot: number; running: boolean } | undefined {
  const marked = slotOfMarkedTask(body, mark);
  if (marked) backend.behaviour.noteTaskMarkShown();
  return marked;
}

/**
 * How a task sent without a pin is found on its slot: by its `mark` (task-mark.ts), by what is new since its
 * `baseline`, or either, the mark first.
 */
export interface LaunchClues {
  baseline?: LaunchBaseline;
  mark?: number;
}

/** What `GET /slots` showed before a task was sent without a pin (see launchClues). */
export interface LaunchBaseline {
  /** The tasks already running, another client's among them. */
  running: RunningTask[];
  /** The latest task id any slot showed: a task of ours shows a newer one. */
  lastTask: number;
}

/**
 * Before a task is sent without a pin, how the slot it runs on will be told afterwards: by its `mark` where it has one
 * (task-mark.ts), and, unless the backend was seen showing marks, by what ran on the server before it (a look at
 * `GET /slots`; an empty baseline when that cannot say).
 */
export async function launchClues(
  deps: SlotTruthDeps,
  plan: Pick<SlotPlan, 'slot'>,
  model: string,
  mark: number | undefined,
): Promise<LaunchClues> {
  const backend = deps.backends.at(plan.slot.backend);
  if (mark !== undefined && backend.behaviour.showsTaskMarks()) return { mark };
  const body = await lookAtSlots(backend, model);
  const baseline = { running: runningTasks(body) ?? [], lastTask: lastTaskShown(body) ?? Infinity };
  return mark === undefined ? { baseline } : { baseline, mark };
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

const LAUNCH_WAIT_MS = 3000;
const LAUNCH_POLL_MS = 5;
const CALM_POLL_MS = 50;
