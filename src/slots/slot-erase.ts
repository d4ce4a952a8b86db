/**
 * Erasing one slot on an operator's request: the slot is acquired through the pool like a request would (so a
 * request using it finishes first and none starts meanwhile), erased on the backend, and its recorded content
 * forgotten whatever the answer (after a failed erase it is unknown). Never loads a model to erase its slot.
 */
import type { LlamaClient } from '../backend/llama-client.js';
import type { SlotPool } from './slot-pool.js';
import type { SlotState } from './slot-state.js';

export interface EraseResult {
  /** True when the backend erased it; false when its model was not loaded (nothing to erase). */
  erased: boolean;
  /** The backend's answer: status and body, when it was asked. */
  status?: number;
  body?: Record<string, unknown>;
}

export async function eraseSlot(
  pool: SlotPool,
  client: LlamaClient,
  slot: SlotState,
  model: string,
  opts: { timeoutMs: number },
): Promise<EraseResult> {
  await pool.acquire(slot.model, () => (slot.busy || slot.disabled ? undefined : { slot }), {
    timeoutMs: opts.timeoutMs,
  });
  try {
    pool.forget(slot);
    if (!(await client.isModelLoaded(model))) return { erased: false };
    const res = await client.slotAction(model, slot.id, 'erase');
    return { erased: res.ok, status: res.status, body: res.body };
  } finally {
    pool.release(slot, { touch: false });
  }
}
