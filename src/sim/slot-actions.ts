/**
 * Slot save / restore / erase on a model instance. Each action is queued on the slot like a task, so an action on
 * a busy slot is deferred until the slot's running (and already queued) work ends: a save then saves the state
 * after the chat. It then runs as a task of the process's main loop (compute-engine.ts): it waits for the batch
 * in progress and holds every other slot for its transfer time, which alone is reported in `timings`. A failed
 * restore empties the slot, as the real server does.
 */
import { join } from 'node:path';
import { round3, transferMs } from './cost-model.js';
import type { ModelInstance } from './model-instance.js';
import { readSaveFile, writeSaveFile } from './save-file.js';
import { wrapSlotId } from './slot-scheduler.js';

/** An action's answer: a 200 body, or an error status with llama-server's message. */
export type ActionResult =
  { ok: true; body: Record<string, unknown> } | { ok: false; status: number; message: string; type?: string };

/** What an action queued on a process that was killed meanwhile gets (its connection is already gone). */
const KILLED: ActionResult = { ok: false, status: 503, message: 'Loading model' };

/** The message of every failed restore (missing file, other model, corrupt, too long for the context). */
export const RESTORE_FAILED = 'Unable to restore slot: No available space in KV cache or invalid slot save file';

/** Saves slot `idSlot` (wrapped) to `{slotSavePath}/{filename}`; the answer echoes the id sent. */
export function saveSlot(inst: ModelInstance, idSlot: number, filename: string): Promise<ActionResult> {
  const slot = inst.slots[wrapSlotId(idSlot, inst.slots.length)]!;
  return slot.run(() =>
    inst.engine.task(async (hold) => {
      if (inst.state === 'stopped') return KILLED;
      const event = { type: 'save' as const, model: inst.config.id, slot: slot.id, filename };
      const fault = inst.recorder.takeFault('save', inst.config.id);
      if (fault) {
        inst.recorder.record({ ...event, ok: false, n_tokens: 0, bytes: 0, status: fault.status });
        return { ok: false, status: fault.status, message: fault.message ?? 'injected save fault' };
      }
      const { cost } = inst.config;
      // The simulator's own file I/O is part of the modelled cost (a hold counts from the task's start).
      const tokens = slot.tokens;
      const bytes = await writeSaveFile(
        join(inst.config.slotSavePath!, filename),
        inst.fingerprint,
        tokens,
        cost.kvBytesPerToken,
      );
      const ms = transferMs(bytes, cost.saveMsPerMB);
      await hold(ms);
      inst.recorder.record({ ...event, ok: true, n_tokens: tokens.length, bytes, status: 200 });
      return {
        ok: true,
        body: { id_slot: idSlot, filename, n_saved: tokens.length, n_written: bytes, timings: { save_ms: round3(ms) } },
      };
    }),
  );
}

/** Restores `{slotSavePath}/{filename}` into slot `idSlot` (wrapped), replacing its tokens. */
export function restoreSlot(inst: ModelInstance, idSlot: number, filename: string): Promise<ActionResult> {
  const slot = inst.slots[wrapSlotId(idSlot, inst.slots.length)]!;
  return slot.run(() =>
    inst.engine.task(async (hold) => {
      if (inst.state === 'stopped') return KILLED;
      const event = { type: 'restore' as const, model: inst.config.id, slot: slot.id, filename };
      const fault = inst.recorder.takeFault('restore', inst.config.id);
      const content = fault
        ? undefined
        : await readSaveFile(
            join(inst.config.slotSavePath!, filename),
            inst.fingerprint,
            inst.config.cost.kvBytesPerToken,
          );
      if (!content || !inst.fitsBeside(slot, content.tokens.length)) {
        slot.clear(); // the real server has already dropped the slot's KV when the load fails
        const status = fault?.status ?? 400;
        inst.recorder.record({ ...event, ok: false, n_tokens: 0, bytes: 0, status });
        return { ok: false, status, message: fault?.message ?? RESTORE_FAILED };
      }
      const { cost } = inst.config;
      const ms = transferMs(content.bytes, cost.restoreMsPerMB);
      await hold(ms);
      slot.tokens = content.tokens;
      // Sliding-window / recurrent models: the restore "works" but the next prompt cannot reuse it.
      slot.reuseBlocked = inst.config.restoreGivesNoReuse;
      inst.recorder.record({ ...event, ok: true, n_tokens: content.tokens.length, bytes: content.bytes, status: 200 });
      return {
        ok: true,
        body: {
          id_slot: idSlot,
          filename,
          n_restored: content.tokens.length,
          n_read: content.bytes,
          timings: { restore_ms: round3(ms) },
        },
      };
    }),
  );
}

/** Erases slot `idSlot` (wrapped); the RAM prompt cache is left alone. */
export function eraseSlot(inst: ModelInstance, idSlot: number): Promise<ActionResult> {
  const slot = inst.slots[wrapSlotId(idSlot, inst.slots.length)]!;
  return slot.run(() =>
    inst.engine.task(async () => {
      const nErased = slot.tokens.length;
      slot.clear();
      inst.recorder.record({ type: 'erase', model: inst.config.id, slot: slot.id, n_erased: nErased });
      return { ok: true, body: { id_slot: idSlot, n_erased: nErased } };
    }),
  );
}
