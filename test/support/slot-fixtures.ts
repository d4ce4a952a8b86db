/** Slot records and contents for the unit tests of the slot logic (planner, checks, eviction ranks). */
import type { SlotContent, SlotState } from '../../src/slots/slot-state.js';

/** An idle slot record of backend 0, never used, with `over` on top. */
export function slot(id: number, over: Partial<SlotState> = {}): SlotState {
  return { backend: 0, model: '', id, busy: false, disabled: false, lastUsed: 0, ...over };
}

/** Unsaved big content of model m holding `nTokens` tokens. */
export function held(nTokens: number, over: Partial<SlotContent> = {}): SlotContent {
  return {
    key: `k${nTokens}`,
    model: 'm',
    blocks: ['a', 'b'],
    prefixLen: 10,
    big: true,
    saved: false,
    nTokens,
    ...over,
  };
}
