/**
 * What each backend has loaded, and which model file is behind each model name. Behind llama-swap and router
 * mode a request for another model unloads the current one (its slots die with its process), so before such a
 * request the slots that only the other model holds are saved, and slot contents of unloaded models are forgotten.
 * Nothing here ever loads a model that the request being served does not need.
 */
import type { Logger } from 'pino';
import type { LlamaClient } from '../backend/llama-client.js';
import type { Config } from '../config/index.js';
import { describeCause } from '../errors.js';
import { noteSkipped, skipSummary } from '../slots/save-skip.js';
import type { ResaveRent } from '../slots/resave-rent.js';
import type { SkipSave } from '../slots/save-skip.js';
import type { SlotCache } from '../slots/slot-cache.js';
import { evictionOf, unsavedBigContent } from '../slots/slot-planner.js';
import type { SlotPool } from '../slots/slot-pool.js';
import type { SlotState } from '../slots/slot-state.js';

export interface ModelWatch {
  /** The model file's identity on that backend (fetched once; see LlamaClient.fingerprint). */
  fingerprint(backend: number, model: string): Promise<string | undefined>;
  /** The identity if already known, without asking the backend. */
  knownFingerprint(backend: number, model: string): string | undefined;
  /** Forget what was learnt about a backend (it restarted or was unreachable). */
  forgetBackend(backend: number): void;
  /** Every model identity known on the backend now, by model name (for the status API). */
  knownFingerprints(backend: number): Record<string, string>;
  /**
   * Before a request for `model` is planned: on llama-swap and router backends, forget the slot contents of models
   * that are no longer loaded; if `model` is not loaded, save what the loaded models' idle slots alone hold (the
   * request is about to unload them; behind llama-swap, busy slots are waited for first); for a big request, make
   * sure `model` is ready so its identity is known.
   */
  prepareForModel(model: string, big: boolean): Promise<void>;
}

interface Deps {
  config: Config;
  clients: readonly LlamaClient[];
  pool: SlotPool;
  slotCache: SlotCache;
  /** Unsaved content let go instead of saved before the swap (SavePolicy.skipSave). */
  skipSave: SkipSave;
  /** Where what the swap gives up is counted (see ProxyContext.resaveRent). */
  resaveRent: ResaveRent;
  log: Logger;
}

export function createModelWatch({ config, clients, pool, slotCache, skipSave, resaveRent, log }: Deps): ModelWatch {
  const fingerprints = new Map<string, Promise<string | undefined>>();
  const known = new Map<string, string>();
  const id = (backend: number, model: string) => `${backend}\u0000${model}`;

  function fingerprint(backend: number, model: string): Promise<string | undefined> {
    const key = id(backend, model);
    let pending = fingerprints.get(key);
    if (!pending) {
      pending = clients[backend]!.fingerprint(model).then(
        (fp) => {
          if (fp === undefined) fingerprints.delete(key);
          else known.set(key, fp);
          return fp;
        },
        () => {
          fingerprints.delete(key);
          return undefined;
        },
      );
      fingerprints.set(key, pending);
    }
    return pending;
  }

  /** Forget one model's identity on a backend, or (without `model`) every identity learnt there. */
  function forget(backend: number, model?: string): void {
    for (const key of [...fingerprints.keys()]) {
      if (model === undefined ? key.startsWith(id(backend, '')) : key === id(backend, model)) {
        fingerprints.delete(key);
        known.delete(key);
      }
    }
  }

  async function saveBeforeSwap(backend: number, loaded: Set<string>, model: string): Promise<void> {
    // llama-swap finishes the running model's requests in flight before it swaps, and from then on any slot action
    // sent to that model would load it again. So a busy slot is waited for (its content is only known once its
    // request ended), and saved before this request can trigger the swap.
    const waitForBusy = clients[backend]!.kind === 'llama-swap';
    for (const slot of pool.all()) {
      if (slot.backend !== backend || slot.model === model || !loaded.has(slot.model)) continue;
      if (slot.busy) {
        if (!waitForBusy) continue;
        const got = await pool
          .acquire(slot.model, () => (slot.busy ? undefined : { slot }), { timeoutMs: config.acquireTimeout * 1000 })
          .catch(() => undefined);
        if (!got) continue;
      } else if (unsavedBigContent(slot, skipSave)) {
        if (!pool.takeForBackground(slot)) continue;
      } else {
        logSkipped(slot, model);
        continue;
      }
      try {
        const content = unsavedBigContent(slot, skipSave);
        if (!content) {
          logSkipped(slot, model);
          continue;
        }
        const result = await slotCache.save(slot, content);
        log.info({ backend: clients[backend]!.url, model: slot.model, slot: slot.id, key: content.key.slice(0, 16), save: result, for_model: model }, 'saved before model swap');
      } finally {
        pool.release(slot);
      }
    }
  }

  /** The swap will drop unsaved content that extends an entry on disk: say so, and why. */
  function logSkipped(slot: SlotState, forModel: string): void {
    const skipped = evictionOf(slot, skipSave).skippedSave;
    if (!skipped) return;
    noteSkipped(resaveRent, skipped);
    log.info({ backend: clients[slot.backend]!.url, model: slot.model, slot: slot.id, key: skipped.content.key.slice(0, 16), skip: skipSummary(skipped), for_model: forModel }, 'not saved before model swap');
  }

  async function prepareOn(backend: number, model: string, big: boolean): Promise<void> {
    const client = clients[backend]!;
    if (client.kind !== 'llama-swap' && client.kind !== 'router') return;
    let loaded: Set<string> | undefined;
    try {
      loaded = await client.loadedModels();
    } catch (err) {
      log.warn({ backend: client.url, err: describeCause(err) }, 'could not read the loaded models');
      return;
    }
    if (!loaded) return;
    pool.forgetIdleOn(backend, (slot) => !loaded.has(slot.model));
    for (const key of [...known.keys()]) {
      const [b, m] = key.split('\u0000') as [string, string];
      if (Number(b) === backend && !loaded.has(m)) forget(backend, m);
    }
    if (!loaded.has(model)) await saveBeforeSwap(backend, loaded, model);
    // Asking for the identity loads the model; only a big request (which may restore) on the only backend asks.
    if (big && clients.length === 1) {
      if (client.kind === 'router' && !loaded.has(model)) await client.loadModel(model, config.requestTimeout * 1000).catch(() => false);
      await fingerprint(backend, model);
    } else if (loaded.has(model)) {
      await fingerprint(backend, model);
    }
  }

  return {
    fingerprint,
    knownFingerprint: (backend, model) => known.get(id(backend, model)) ?? (clients[backend]!.kind === 'llama-server' ? known.get(id(backend, config.modelId)) : undefined),
    forgetBackend: (backend) => forget(backend),
    knownFingerprints(backend) {
      const out: Record<string, string> = {};
      for (const [key, fp] of known) {
        const [b, m] = key.split('\u0000') as [string, string];
        if (Number(b) === backend) out[m] = fp;
      }
      return out;
    },
    async prepareForModel(model, big) {
      await Promise.all(clients.map((_, i) => prepareOn(i, model, big)));
    },
  };
}
