/**
 * The launch that brings a conversation left to the server's RAM cache back into a slot and saves it (see
 * RamRescues): the conversation's last request again with `n_predict: 0`, served from the RAM cache.
 * - On a backend that clears idle slots: a launch like any other (inside the launch gate, after the unpinned tasks
 *   before it are placed and running, after the saves of what it clears, with room made for the load
 *   (slot-room.ts)), without a pin and with a mark (task-mark.ts). Its slot is then found by the mark, or, where the
 *   server has not shown one yet, as an ended unpinned task's is (the idle slot with a newer task holding exactly
 *   what the answer left, slotLeftBy), and saved. The gate stays shut until the save is answered: any launch
 *   meanwhile would clear that slot.
 * - On one that keeps them: pinned to an idle slot whose content the launch may move into the RAM cache in its turn
 *   (a small one, one on disk, or one left there too), as a request's is (see pinned-ram-tier.ts); saved there.
 */
import type { SlotContent, SlotState } from '../slots/slot-state.js';
import type { ChosenReplay, ReplayCall, RescueOutcome } from '../slots/ram-rescue.js';
import { slotLeftBy } from '../slots/slot-check.js';
import { shortKey } from '../cache/meta-file.js';
import { ANY_SLOT, readText } from '../backend/llama-client.js';
import type { Backend } from '../backend/backend.js';
import { readAnswer, tokensLeftInSlot } from './sse-tap.js';
import type { SlotTruthDeps } from './slot-truth.js';
import { lookAtSlots } from './slot-truth.js';
import { beforeTaskStart } from './before-launch.js';
import { launchClues, markedSlot } from './launch-tracking.js';
import type { LaunchClues } from './launch-tracking.js';
import { keepsWithoutSwaps } from './server-ram-tier.js';
import { newTaskMark } from './task-mark.js';
import type { GenerationDeps } from './deps.js';
import { roomForRescue } from './slot-room.js';
import { movesIntoRam, noteLaunch } from './pinned-ram-tier.js';

export type RescueDeps = SlotTruthDeps & Pick<GenerationDeps, 'slotCache' | 'policy'>;

/** A replay answers at once (nothing to generate); a slow one is given up like a placement. */
const REPLAY_TIMEOUT_MS = 30_000;
/** How long a pinned rescue queues for a slot before it is tried again later. */
const RESCUE_SLOT_WAIT_MS = 10_000;

/**
 * The rescue itself; true once `content` (as far as its prompt) is on disk, 'later' when it had to wait, 'lost' when
 * its model is no longer loaded (behind llama-swap or a router: the replay would load it again, into an empty cache).
 */
export async function rescueFromServerRam(
  deps: RescueDeps,
  backendIndex: number,
  content: SlotContent,
  replay: ChosenReplay,
): Promise<RescueOutcome> {
  const backend = deps.backends.at(backendIndex);
  const loaded = await backend.loadedModels();
  if (loaded && !loaded.has(content.model)) return 'lost';
  if (keepsWithoutSwaps(backend)) return rescueIntoPinnedSlot(deps, backendIndex, content, replay);
  return rescueUnpinned(deps, backendIndex, content, replay);
}

async function rescueUnpinned(
  deps: RescueDeps,
  backendIndex: number,
  content: SlotContent,
  replay: ChosenReplay,
): Promise<boolean | 'later'> {
  const backend = deps.backends.at(backendIndex);
  // A record for the task: an idle one that names no content (after any launch there, most do).
  const slot = deps.pool.group(backendIndex, content.model).find((s) => !s.busy && !s.disabled && !s.content);
  if (!slot || !deps.pool.takeForBackground(slot)) return false;
  const pass = await deps.launchGate.enter(backendIndex);
  // From here every launch on the backend waits for the rescue.
  const since = performance.now();
  try {
    await deps.launchGate.placed(backendIndex);
    await deps.launchGate.launched(backendIndex);
    if (content.saved) return true;
    if (!backend.behaviour.clearsIdleSlots()) return false;
    const plan = { slot, unpinned: true as const };
    if (content.nTokens && !(await roomForRescue(deps, backendIndex, content.model, content.nTokens))) return 'later';
    await beforeTaskStart(deps, plan, content.model);
    backend.ramCache.take(content);
    // Its task is found after its end by its mark (task-mark.ts), or, where the server has not shown one, as the
    // idle slot with a task newer than before the launch that holds what the replay left.
    const mark = newTaskMark();
    const clues = await launchClues(deps, plan, content.model, mark);
    const call = replay(ANY_SLOT, mark);
    const timings = await runReplay(backend, slot, content, call);
    const left = tokensLeftInSlot(timings);
    const id =
      left === undefined ? undefined : replayedOn(backend, await lookAtSlots(backend, content.model), left, clues);
    if (id === undefined || !deps.pool.moveTo(slot, id)) return false;
    return await saveRescued(deps, { backendIndex, slot, since }, content, { call, timings, left: left! });
  } catch (err) {
    failed(deps, backend, slot, content, err);
    return false;
  } finally {
    pass.release();
    deps.pool.release(slot, { touch: false });
  }
}

async function rescueIntoPinnedSlot(
  deps: RescueDeps,
  backendIndex: number,
  content: SlotContent,
  replay: ChosenReplay,
): Promise<boolean | 'later'> {
  const backend = deps.backends.at(backendIndex);
  // Under load no slot is idle for long: the rescue queues for the next one that may take it, as a request does.
  const plan = await deps.pool
    .acquire(
      content.model,
      (candidates) => {
        const slot = slotToRescueInto(deps, backendIndex, content, candidates);
        return slot && { slot };
      },
      { timeoutMs: RESCUE_SLOT_WAIT_MS },
    )
    .catch(() => undefined);
  if (!plan) return 'later';
  const { slot } = plan;
  // From here a request for the slot waits for the rescue.
  const since = performance.now();
  try {
    // Continued meanwhile (its next turn took it back from the RAM cache), or saved: nothing left to do.
    if (content.saved || !deps.rescues.stillLeft(content)) return true;
    const pushedOut = slot.content!;
    backend.behaviour.noteTaskStart(slot);
    backend.ramCache.take(content);
    noteLaunch(deps, plan, pushedOut);
    // The slot holds the conversation from now on: its next turn, arriving meanwhile, waits for it (the planner's
    // own-slot wait) rather than restore an older entry from disk.
    deps.pool.fill(slot, { ...content, saved: false });
    const call = replay(slot.id);
    const timings = await runReplay(backend, slot, content, call);
    const left = tokensLeftInSlot(timings);
    if (left === undefined) {
      deps.pool.forget(slot);
      return false;
    }
    return await saveRescued(deps, { backendIndex, slot, since }, content, { call, timings, left });
  } catch (err) {
    failed(deps, backend, slot, content, err);
    return false;
  } finally {
    deps.pool.release(slot, { touch: false });
  }
}

/**
 * The idle slot a pinned rescue takes: one whose content its launch moves into the RAM cache (see movesIntoRam) and
 * may: a small one, then one on disk, then one left to the RAM cache too (rescued in its turn), least recently used
 * first. Not one whose content must be saved first.
 */
function slotToRescueInto(
  deps: RescueDeps,
  backendIndex: number,
  content: SlotContent,
  candidates: readonly SlotState[],
): SlotState | undefined {
  const rank = (held: SlotContent): number | undefined => {
    if (!movesIntoRam(held, content.blocks)) return undefined;
    if (!held.big) return 0;
    if (held.saved) return 1;
    return deps.rescues.leftToRam(held) ? 2 : undefined;
  };
  const ranked = candidates
    .filter((s) => s.backend === backendIndex && !s.busy && !s.disabled && s.content)
    .map((slot) => ({ slot, rank: rank(slot.content!) }))
    .filter((r): r is { slot: SlotState; rank: number } => r.rank !== undefined);
  ranked.sort((a, b) => a.rank - b.rank || a.slot.lastUsed - b.slot.lastUsed);
  return ranked[0]?.slot;
}

/**
 * The slot a replay sent without a pin ran on, from a look after its end: the one showing its mark, else (no mark
 * shown there yet) the idle slot with a newer task than the `baseline` that holds the `left` tokens of its answer.
 */
function replayedOn(
  backend: Backend,
  body: unknown,
  left: number,
  { mark, baseline }: LaunchClues,
): number | undefined {
  const marked = mark === undefined ? undefined : markedSlot(backend, body, mark);
  return marked?.slot ?? (baseline && slotLeftBy(body, left, baseline.lastTask));
}

/** Send the replay as a task of `slot`'s record; resolves with the answer's timings. */
async function runReplay(backend: Backend, slot: SlotState, content: SlotContent, call: ReplayCall) {
  backend.behaviour.noteLaunched(slot, false, true, content.nTokens ?? 0);
  let answer: string;
  try {
    const res = await backend.client.generate(call.path, call.body, {
      signal: AbortSignal.timeout(REPLAY_TIMEOUT_MS),
      stream: false,
    });
    answer = await readText(res.body);
    if (res.status >= 400) throw new Error(`status ${res.status}: ${answer.slice(0, 200)}`);
  } finally {
    backend.behaviour.noteEnded(slot);
  }
  backend.behaviour.noteContact();
  return readAnswer(Buffer.from(answer)).timings;
}

/**
 * The slot holds the rescued conversation (`left` tokens, after the replay `call` reused `timings.cache_n`): record and
 * save it, and tell what the rescue cost since it took the slot or the launch gate (`since`).
 */
async function saveRescued(
  deps: RescueDeps,
  { backendIndex, slot, since }: { backendIndex: number; slot: SlotState; since: number },
  content: SlotContent,
  {
    call,
    timings,
    left,
  }: { call: ReplayCall; timings: { cache_n?: number; prompt_n?: number } | undefined; left: number },
): Promise<boolean> {
  const backend = deps.backends.at(backendIndex);
  deps.rescues.noteReplayed(content, call.withReply, timings?.cache_n);
  const rescued: SlotContent = { ...content, nTokens: left, saved: false };
  deps.pool.fill(slot, rescued);
  const save = await deps.slotCache.save(slot, rescued);
  const ms = performance.now() - since;
  if (save.ok) deps.rescues.noteRescueCost(backendIndex, ms, save.ms);
  deps.log.info(
    {
      backend: backend.url,
      model: content.model,
      slot: slot.id,
      key: shortKey(content.key),
      ms: Math.round(ms * 100) / 100,
      cache_n: timings?.cache_n,
      prompt_n: timings?.prompt_n,
      with_reply: call.withReply,
      save,
    },
    "saved from the server's RAM cache",
  );
  return save.ok;
}

function failed(deps: RescueDeps, backend: Backend, slot: SlotState, content: SlotContent, err: unknown): void {
  deps.pool.forget(slot);
  deps.log.warn(
    { backend: backend.url, key: shortKey(content.key), err },
    "bringing a conversation back from the server's RAM cache failed",
  );
}
