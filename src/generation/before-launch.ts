/**
 * What a launch on a backend that clears its idle slots when a task starts (llama-server's default configuration)
 * must do first: save what the other idle slots alone hold, let our tasks that are ending reach their end, and book
 * the saves of those still running (BookedSaves) so that the server runs them before it clears their slots.
 */
import { slotProcessing, slotTokensLeft } from '../slots/slot-check.js';
import type { SlotContent, SlotPlan, SlotState } from '../slots/slot-state.js';
import type { CacheOpResult } from '../slots/slot-cache.js';
import { lookAtSlots, noteClearedIntoRam } from './slot-truth.js';
import type { SlotTruthDeps } from './slot-truth.js';

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
  // Sent without a pin, the task runs where the server puts it: what the request's own record held sits in an idle
  // slot at the server like the others and goes into the RAM cache with them (the record follows the task once found).
  const own = plan.unpinned ? plan.slot.content : undefined;
  if (own) {
    deps.pool.forget(plan.slot);
    noteClearedIntoRam(deps, backend, own);
  }
  return saves;
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
 * A generating task this close to its `n_predict` counts as finishing: a few decode steps (milliseconds on a GPU or
 * a small model, a fraction of a second on a slow one) against a lost conversation prefilled again.
 */
const FINISHING_SOON_TOKENS = 16;

/** How long a request whose task the server has finished may take to reach its end at the proxy. */
const FINISHING_WAIT_MS = 500;
