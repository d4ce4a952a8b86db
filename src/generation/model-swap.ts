/**
 * Before a request for a model is planned. Behind llama-swap and router mode a request for another model unloads
 * the current one (its slots and RAM cache die with its process), so the slots that only the other models hold are
 * saved first, and what was left to their RAM caches is rescued to disk (RamRescues.rescueNow); what belonged to
 * models no longer loaded is forgotten (Backend.loadedModels, RamRescues.modelsLoaded). Nothing here ever loads a
 * model that the request being served does not need.
 */
import type { Logger } from 'pino';
import type { Backend } from '../backend/backend.js';
import type { Backends } from '../backend/backends.js';
import { shortKey } from '../cache/meta-file.js';
import { noteSkipped, skipSummary } from '../slots/save-skip.js';
import type { RamRescues } from '../slots/ram-rescue.js';
import type { ResaveRent } from '../slots/resave-rent.js';
import type { SkipSave } from '../slots/save-skip.js';
import type { SlotCache } from '../slots/slot-cache.js';
import { evictionOf, unsavedBigContent } from '../slots/slot-planner.js';
import type { SlotPool } from '../slots/slot-pool.js';
import type { SlotState } from '../slots/slot-state.js';

export interface ModelSwapDeps {
  backends: Backends;
  pool: SlotPool;
  slotCache: SlotCache;
  /** Unsaved content let go instead of saved before the swap (SavePolicy.skipSave). */
  skipSave: SkipSave;
  /** Where what the swap gives up is counted (the smart policy's re-save rent). */
  rent: ResaveRent;
  /** Conversations left to the servers' RAM caches unsaved: rescued before their model is unloaded. */
  rescues: Pick<RamRescues, 'rescueNow' | 'modelsLoaded'>;
  log: Logger;
  /** ACQUIRE_TIMEOUT: how long a save before a swap waits for a busy slot. */
  acquireTimeoutMs: number;
  /** REQUEST_TIMEOUT: how long a router may take to load the model. */
  loadTimeoutMs: number;
}

/**
 * On llama-swap and router backends: forget the slot contents of models that are no longer loaded; if `model` is
 * not loaded and loading it unloads another one, save what the loaded models' slots alone hold (busy slots are
 * waited for first); for a big request, make sure `model` is ready so its identity is known.
 */
export async function prepareForModel(deps: ModelSwapDeps, model: string, big: boolean): Promise<void> {
  await Promise.all(deps.backends.all.map((backend) => prepareOn(deps, backend, model, big)));
}

async function prepareOn(deps: ModelSwapDeps, backend: Backend, model: string, big: boolean): Promise<void> {
  const client = backend.client;
  if (client.kind !== 'llama-swap' && client.kind !== 'router') return;
  const loaded = await backend.loadedModels();
  if (!loaded) return;
  deps.rescues.modelsLoaded(backend.index, loaded);
  if (!loaded.has(model) && (await backend.loadUnloads(loaded))) await saveBeforeSwap(deps, backend, loaded, model);
  // Asking for the identity loads the model; only a big request (which may restore) on the only backend asks.
  if (big && deps.backends.all.length === 1) {
    if (client.kind === 'router' && !loaded.has(model))
      await client.loadModel(model, deps.loadTimeoutMs).catch(() => false);
    await backend.fingerprint(model);
  } else if (loaded.has(model)) {
    await backend.fingerprint(model);
  }
}

async function saveBeforeSwap(
  deps: ModelSwapDeps,
  backend: Backend,
  loaded: Set<string>,
  model: string,
): Promise<void> {
  const { pool, skipSave } = deps;
  // llama-swap and the router (an unload beyond --models-max) finish the running model's requests in flight before
  // they unload it, and from then on a slot action sent to that model would find it gone (or load it again). So a
  // busy slot is waited for (its content is only known once its request ended), and saved before this request can
  // trigger the unload.
  for (const slot of pool.all()) {
    if (slot.backend !== backend.index || slot.model === model || !loaded.has(slot.model)) continue;
    if (slot.busy) {
      const got = await pool
        .acquire(slot.model, () => (slot.busy ? undefined : { slot }), { timeoutMs: deps.acquireTimeoutMs })
        .catch(() => undefined);
      if (!got) continue;
    } else if (unsavedBigContent(slot, skipSave)) {
      if (!pool.takeForBackground(slot)) continue;
    } else {
      logSkipped(deps, backend, slot, model);
      continue;
    }
    try {
      const content = unsavedBigContent(slot, skipSave);
      if (!content) {
        logSkipped(deps, backend, slot, model);
        continue;
      }
      const result = await deps.slotCache.save(slot, content);
      deps.log.info(
        {
          backend: backend.url,
          model: slot.model,
          slot: slot.id,
          key: shortKey(content.key),
          save: result,
          for_model: model,
        },
        'saved before model swap',
      );
    } finally {
      pool.release(slot);
    }
  }
  // After the slots: a rescue's launch clears the idle slots, which hold nothing unsaved now.
  for (const other of loaded) if (other !== model) await deps.rescues.rescueNow(backend.index, other);
}

/** The swap will drop unsaved content that extends an entry on disk: say so, and why. */
function logSkipped(deps: ModelSwapDeps, backend: Backend, slot: SlotState, forModel: string): void {
  const skipped = evictionOf(slot, deps.skipSave).skippedSave;
  if (!skipped) return;
  noteSkipped(deps.rent, skipped);
  deps.log.info(
    {
      backend: backend.url,
      model: slot.model,
      slot: slot.id,
      key: shortKey(skipped.content.key),
      skip: skipSummary(skipped),
      for_model: forModel,
    },
    'not saved before model swap',
  );
}
