/**
 * The scheduler's decision, kept pure: given the request, the candidate slots and the disk matches, pick a slot and
 * say whether to restore into it and whether its current content must be saved first. No I/O, no clocks.
 */
import { lcpBlocks, lcpRatio } from './slot-state.js';
import type { DiskMatch, SlotContent, SlotPlan, SlotRequest, SlotState } from './slot-state.js';

export interface PlanInput {
  request: SlotRequest;
  /** Every slot that can serve the request's model, on every backend. */
  candidates: readonly SlotState[];
  /** The best disk entry restorable on `backend`, if any (LCP_TH already applied). */
  diskMatch: (backend: number) => DiskMatch | undefined;
  lcpTh: number;
}

/** Pick a slot for the request, or undefined when every candidate is busy (the caller waits). */
export function planSlot({ request, candidates, diskMatch, lcpTh }: PlanInput): SlotPlan | undefined {
  const idle = candidates.filter((s) => !s.busy && !s.disabled);
  if (idle.length === 0) return undefined;
  if (!request.big) return withSaveFirst(chooseVictim(idle));

  const resident = bestResident(idle, request, lcpTh);
  const disk = bestDisk(idle, diskMatch);
  if (resident && (!disk || resident.lcp >= disk.lcp)) {
    return { slot: resident.slot, resident: { lcp: resident.lcp, ratio: resident.ratio } };
  }
  if (disk) {
    const slot = chooseVictim(idle.filter((s) => s.backend === disk.backend));
    return { ...withSaveFirst(slot), restore: disk };
  }
  return withSaveFirst(chooseVictim(idle));
}

/** Content that would be lost if the slot were overwritten now. */
export function unsavedBigContent(slot: SlotState): SlotContent | undefined {
  return slot.content?.big && !slot.content.saved ? slot.content : undefined;
}

function withSaveFirst(slot: SlotState): SlotPlan {
  const saveFirst = unsavedBigContent(slot);
  return saveFirst ? { slot, saveFirst } : { slot };
}

/**
 * The slot to overwrite: an empty one first, then one whose content is small or already on disk, then (only if
 * nothing else is idle) one whose big content must be saved first. Least recently used first within each class.
 */
function chooseVictim(slots: readonly SlotState[]): SlotState {
  const rank = (s: SlotState) => (!s.content ? 0 : unsavedBigContent(s) ? 2 : 1);
  return [...slots].sort((a, b) => rank(a) - rank(b) || a.lastUsed - b.lastUsed || a.backend - b.backend || a.id - b.id)[0]!;
}

function bestResident(idle: readonly SlotState[], request: SlotRequest, lcpTh: number) {
  let best: { slot: SlotState; lcp: number; ratio: number } | undefined;
  for (const slot of idle) {
    const content = slot.content;
    if (!content?.big || content.model !== request.model) continue;
    const lcp = lcpBlocks(content.blocks, request.blocks);
    const ratio = lcpRatio(lcp, content.blocks, request.blocks);
    if (lcp === 0 || ratio < lcpTh) continue;
    if (!best || lcp > best.lcp || (lcp === best.lcp && slot.lastUsed > best.slot.lastUsed)) best = { slot, lcp, ratio };
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
