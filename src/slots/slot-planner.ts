/**
 * The scheduler's decision, kept pure: given the request, the candidate slots and the disk matches, pick a slot and
 * say whether to restore into it and whether its current content must be saved first. No I/O, no clocks.
 */
import { continuesBlocks, lcpBlocks, lcpRatio } from '../prompt/block-match.js';
import type { SkipSave } from './save-skip.js';
import type { DiskMatch, SlotContent, SlotPlan, SlotRequest, SlotState } from './slot-state.js';

export interface PlanInput {
  request: SlotRequest;
  /** Every slot that can serve the request's model, on every backend. */
  candidates: readonly SlotState[];
  /** The best disk entry restorable on `backend`, if any (LCP_TH already applied). */
  diskMatch: (backend: number) => DiskMatch | undefined;
  lcpTh: number;
  /** Whether to restore the entry into a slot that already holds `slotLcp` blocks of the prompt (SavePolicy). */
  restoreWorthIt: (match: DiskMatch, slotLcp: number) => boolean;
  /**
   * Unsaved big content this lets go is overwritten without a save, and its slot ranks as cheap to overwrite
   * (SavePolicy; NEVER_SKIP saves every unsaved big content first, as the seed does).
   */
  skipSave: SkipSave;
  /**
   * Wait for a busy slot that frees up soon rather than take an idle one at a cost: one that holds this conversation
   * (its last turn is finishing, or it is being saved) rather than start cold, or one being saved in the background
   * that will be a cheaper victim than the conversation an idle slot holds (see saveEndsCheaper). Off once the
   * request has waited long enough (see the generation flow's patience).
   */
  patient?: boolean;
  /**
   * Whether the backend keeps its idle slots when a task starts (default: yes). One that clears them (llama-server's
   * default configuration) loses every idle slot's content at this launch anyway, so no victim is cheaper than
   * another there and a background save is not worth waiting for.
   */
  keepsIdleSlots?: (backend: number) => boolean;
  /** Whether a task of ours may still be in its prefill on this busy slot (see batchPlace). */
  prefilling?: (slot: SlotState) => boolean;
}

/**
 * Pick a slot for the request, or undefined when every candidate is busy or a busy one is worth waiting for (the
 * caller waits).
 */
export function planSlot(input: PlanInput): SlotPlan | undefined {
  const { request, candidates, diskMatch, lcpTh, skipSave } = input;
  const idle = candidates.filter((s) => !s.busy && !s.disabled);
  if (idle.length === 0) return undefined;
  const place = batchPlace(candidates, request, input.prefilling);
  const chooseVictim = (slots: readonly SlotState[]) => cheapestVictim(slots, skipSave, place);
  const evicting = (slot: SlotState): SlotPlan | undefined =>
    input.patient && input.keepsIdleSlots?.(slot.backend) !== false && saveEndsCheaper(candidates, slot, skipSave)
      ? undefined
      : withSaveFirst(slot, skipSave);
  if (!request.big) return evicting(chooseVictim(idle));

  const resident = bestResident(idle, request, lcpTh);
  const disk = bestDisk(idle, diskMatch);
  if (input.patient) {
    const own = busyWithThisConversation(candidates, request);
    if (own && own.lcp > Math.max(resident?.lcp ?? 0, disk?.lcp ?? 0)) return undefined;
    // Busy only saving this conversation (write-behind), it holds it as far as the file being written: the end of
    // that save (milliseconds) costs less than restoring the same state into another slot, which pushes out what
    // that slot holds. Seen on the real server: a turn arriving during its answer's idle-time save went to the other
    // slot, saving that slot's conversation first and restoring its own from the file just written.
    if (own?.saving && own.lcp >= (disk?.lcp ?? 0) && own.lcp > (resident?.lcp ?? 0)) return undefined;
  }
  if (resident && (!disk || resident.lcp >= disk.lcp)) {
    return { slot: resident.slot, resident: { lcp: resident.lcp, ratio: resident.ratio } };
  }
  if (disk) {
    const slot = chooseVictim(idle.filter((s) => s.backend === disk.backend));
    const slotLcp = slot.content?.model === request.model ? lcpBlocks(slot.content.blocks, request.blocks) : 0;
    if (input.restoreWorthIt(disk, slotLcp)) {
      const plan = evicting(slot);
      return plan && { ...plan, restore: disk };
    }
  }
  return evicting(chooseVictim(idle));
}

/**
 * Overwriting `victim` would push out a conversation (its next turn pays a restore, and maybe a save now), while a
 * slot of the same backend is busy only with a background save and, once saved, is the cheaper loss: a one-off, or
 * a conversation already on disk where `victim`'s must be saved first. That save ends soon; waiting for it costs
 * less. (Seen with Qwen Code: an IDE completion pushed the agent's conversation out while the slot of the memory
 * extraction before it was being saved.)
 */
function saveEndsCheaper(candidates: readonly SlotState[], victim: SlotState, skipSave: SkipSave): boolean {
  const rank = evictionRank(victim, skipSave);
  if (rank !== CONVERSATION_ON_DISK && rank !== CONVERSATION_TO_SAVE) return false;
  return candidates.some(
    (s) =>
      s.background === true &&
      s.backend === victim.backend &&
      s.content?.big === true &&
      (s.content.turns === 1 || rank === CONVERSATION_TO_SAVE),
  );
}

/** What overwriting the slot now means for its content: save it first, let it go (and why), or nothing to keep. */
export function evictionOf(slot: SlotState, skipSave: SkipSave): Pick<SlotPlan, 'saveFirst' | 'skippedSave'> {
  const content = slot.content;
  if (!content?.big || content.saved) return {};
  const reason = skipSave(content);
  return reason ? { skippedSave: { content, reason } } : { saveFirst: content };
}

/** Content that would be lost if the slot were overwritten now and must be saved first: big, not on disk, not let go. */
export function unsavedBigContent(slot: SlotState, skipSave: SkipSave): SlotContent | undefined {
  return evictionOf(slot, skipSave).saveFirst;
}

function withSaveFirst(slot: SlotState, skipSave: SkipSave): SlotPlan {
  return { slot, ...evictionOf(slot, skipSave) };
}

/**
 * The slot to overwrite, cheapest loss first (least recently used first within a rank):
 * 0. empty;
 * 1. small content: nothing worth keeping;
 * 2. a big one-off that needs no save: content no later request has continued (a title, Qwen Code's memory
 *    extraction, an IDE completion), saved or let go. Its owner has not come back so far; a conversation has;
 * 3. a big conversation that needs no save (on disk, or let go): its next turn pays a restore;
 * 4. a big one-off that must be saved first: the save is paid now;
 * 5. a big conversation that must be saved first (only when nothing else is idle).
 * Between 3 and 4 the smaller transfer goes first (see cheapestVictim). So a side request sharing no prefix with
 * anything takes an empty slot, a small one or a previous one-off before it pushes out an agent's live
 * conversation, and a conversation coming back takes the one-off's slot too.
 */
export function evictionRank(slot: SlotState, skipSave: SkipSave): number {
  const content = slot.content;
  if (!content) return 0;
  if (!content.big) return 1;
  const oneOff = content.turns === 1;
  if (unsavedBigContent(slot, skipSave)) return oneOff ? 4 : CONVERSATION_TO_SAVE;
  return oneOff ? 2 : CONVERSATION_ON_DISK;
}

const CONVERSATION_ON_DISK = 3;
const CONVERSATION_TO_SAVE = 5;

/**
 * The cheapest slot to overwrite: the lowest rank; within a rank the slot best placed in the server's batches
 * (`place`: 0 best), then the least recently used. Ranks 3 and 4 cost the same kind of work, a transfer between
 * slot and disk (a restore when the conversation comes back, a save of the one-off now; taken as alike per token,
 * as on a GPU): when the best is a conversation on disk, a one-off to save that moves fewer blocks goes instead (a
 * 1k-token IDE completion is saved rather than a 40k-token conversation restored later).
 */
function cheapestVictim(
  slots: readonly SlotState[],
  skipSave: SkipSave,
  place: (slot: SlotState) => number,
): SlotState {
  const ranked = slots.map((slot) => ({ slot, rank: evictionRank(slot, skipSave), place: place(slot) }));
  ranked.sort(
    (a, b) =>
      a.rank - b.rank ||
      a.place - b.place ||
      a.slot.lastUsed - b.slot.lastUsed ||
      a.slot.backend - b.slot.backend ||
      a.slot.id - b.slot.id,
  );
  const best = ranked[0]!;
  const oneOffToSave = best.rank === 3 ? ranked.find((r) => r.rank === 4) : undefined;
  const blocks = (r: { slot: SlotState }) => r.slot.content!.blocks.length;
  return oneOffToSave && blocks(oneOffToSave) < blocks(best) ? oneOffToSave.slot : best.slot;
}

/**
 * How well a slot places the request's prefill among the prefills of ours running on its backend (0 well, 1 not).
 * llama-server fills each batch (`n_batch` prompt tokens) with its prefilling slots' prompts in slot-id order, and a
 * task's first token comes only after the batch that takes its last prompt token. So a task on a lower slot than a
 * running prefill takes that prefill's share of every batch. Measured on the real server (two ~2.6k-token prompts
 * sent 15 ms apart, `n_batch` 2048): the first on slot 2 and the second on slot 3 answered after 750 and 1490 ms; the
 * other way round after 1680 and 890 ms (the first one's last tokens waited a whole batch), 15 % more on average.
 * So a big prompt goes above the running prefills (first come, first served), and a small one below them: its few
 * tokens go into the next batch instead of waiting for a long prompt's end.
 */
function batchPlace(
  candidates: readonly SlotState[],
  request: Pick<SlotRequest, 'big'>,
  prefilling: ((slot: SlotState) => boolean) | undefined,
): (slot: SlotState) => number {
  if (!prefilling) return () => 0;
  const running = candidates.filter((s) => s.busy && prefilling(s));
  return (slot) => {
    const others = running.filter((s) => s.backend === slot.backend);
    const wellPlaced = request.big ? others.every((s) => s.id < slot.id) : others.every((s) => s.id > slot.id);
    return wellPlaced ? 0 : 1;
  };
}

function bestResident(idle: readonly SlotState[], request: SlotRequest, lcpTh: number) {
  let best: { slot: SlotState; lcp: number; ratio: number } | undefined;
  for (const slot of idle) {
    const content = slot.content;
    if (!content?.big || content.model !== request.model) continue;
    const lcp = lcpBlocks(content.blocks, request.blocks);
    const ratio = lcpRatio(lcp, content.blocks, request.blocks);
    if (lcp === 0 || ratio < lcpTh) continue;
    if (!best || lcp > best.lcp || (lcp === best.lcp && preferOnTie(slot, best.slot, request)))
      best = { slot, lcp, ratio };
  }
  return best;
}

/**
 * Between two slots holding equally long prefixes: the one the request's session filled (session affinity: two
 * sessions of one agent share a long system prompt and tools, and each should keep to its own slot), else the most
 * recently used.
 */
function preferOnTie(slot: SlotState, best: SlotState, request: SlotRequest): boolean {
  const session = request.session;
  if (session !== undefined) {
    const mine = slot.content?.session === session;
    if (mine !== (best.content?.session === session)) return mine;
  }
  return slot.lastUsed > best.lastUsed;
}

/**
 * A busy slot whose content this request continues (a later turn of the same conversation, not a copy of it):
 * it is busy only until its last turn's answer ends or its write-behind save is done.
 */
function busyWithThisConversation(
  candidates: readonly SlotState[],
  request: SlotRequest,
): { lcp: number; saving: boolean } | undefined {
  let best: { lcp: number; saving: boolean } | undefined;
  for (const slot of candidates) {
    const content = slot.content;
    if (!slot.busy || slot.disabled || !content?.big || content.model !== request.model) continue;
    if (request.key === content.key || !continuesBlocks(content.blocks, request.blocks)) continue;
    const lcp = lcpBlocks(content.blocks, request.blocks);
    if (!best || lcp > best.lcp) best = { lcp, saving: slot.background === true };
  }
  return best;
}

function bestDisk(idle: readonly SlotState[], diskMatch: (backend: number) => DiskMatch | undefined) {
  let best: DiskMatch | undefined;
  for (const backend of new Set(idle.map((s) => s.backend))) {
    const match = diskMatch(backend);
    if (match && (!best || match.lcp > best.lcp)) best = match;
  }
  return best;
}
