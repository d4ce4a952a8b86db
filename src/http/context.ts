/**
 * Everything a request handler needs, built once by createProxy(): the clients, the slot pool, the index and the
 * helpers that tie them together (backend kind probing, slot-count checks, disk matches per backend).
 */
import type { Logger } from 'pino';
import type { LlamaClient } from '../backend/llama-client.js';
import type { PrefixIndex } from '../cache/prefix-index.js';
import type { Config } from '../config/index.js';
import { describeCause } from '../errors.js';
import type { SlotCache } from '../slots/slot-cache.js';
import type { SlotPool } from '../slots/slot-pool.js';
import type { DiskMatch } from '../slots/slot-state.js';

export interface ProxyContext {
  config: Config;
  clients: readonly LlamaClient[];
  pool: SlotPool;
  index: PrefixIndex;
  slotCache: SlotCache;
  log: Logger;
  /**
   * Probe every backend whose kind is not known yet (start-up, or after it was unreachable), and make sure the
   * slot count of every plain llama-server was checked before a request is pinned. Never throws.
   */
  ensureBackendKinds(): Promise<void>;
  /** Forget slot contents of models that are no longer loaded (llama-swap swapped them, router unloaded them). */
  reconcileLoadedModels(): Promise<void>;
  /**
   * Check the server's real slot count for a model once it is loaded (ids wrap silently otherwise). Resolves when
   * the check is done, or failed (then the next call tries again); concurrent callers share one check. Never rejects.
   */
  checkSlotCount(backend: number, model: string): Promise<void>;
  /** The best disk entry for this prompt whose file lives on `backend`. */
  diskMatch(backend: number, prompt: { model: string; blocks: readonly string[] }): DiskMatch | undefined;
}

export function createProxyContext(deps: Omit<ProxyContext, 'ensureBackendKinds' | 'reconcileLoadedModels' | 'checkSlotCount' | 'diskMatch'>): ProxyContext {
  const { clients, pool, index, log, config } = deps;
  const slotChecks = new Map<string, Promise<void>>();
  const backendIndexByUrl = new Map(clients.map((c, i) => [c.url, i]));

  async function ensureBackendKinds(): Promise<void> {
    await Promise.all(
      clients.map(async (client, i) => {
        if (!client.kind) {
          try {
            const kind = await client.detectKind();
            log.info({ backend: client.url, kind }, 'backend kind detected');
            // A backend that was unreachable may have restarted: what we believed its slots held is gone.
            for (const slot of pool.all()) if (slot.backend === i && !slot.busy) slot.content = undefined;
          } catch (err) {
            log.warn({ backend: client.url, err: describeCause(err) }, 'backend probe failed');
            return;
          }
        }
        // Before any id_slot is sent: the first requests after start-up would otherwise use wrapping ids.
        if (client.kind === 'llama-server') await checkSlotCount(i, config.modelId);
      }),
    );
  }

  async function reconcileLoadedModels(): Promise<void> {
    await Promise.all(
      clients.map(async (client, i) => {
        if (client.kind !== 'llama-swap' && client.kind !== 'router') return;
        const models = new Set(pool.all().filter((s) => s.backend === i && s.content).map((s) => s.model));
        for (const model of models) {
          const loaded = await client.isModelLoaded(model).catch(() => true);
          if (!loaded) pool.forgetContent(i, model);
        }
      }),
    );
  }

  function checkSlotCount(backend: number, model: string): Promise<void> {
    const groupModel = clients[backend]!.kind === 'llama-server' ? '' : model;
    const id = `${backend}\u0000${groupModel}`;
    const pending = slotChecks.get(id);
    if (pending) return pending;
    const configured = config.backends[backend]!.nSlots;
    const check = clients[backend]!
      .totalSlots(model)
      .then((total) => {
        if (total === undefined) {
          slotChecks.delete(id);
          return;
        }
        if (total < configured) {
          log.warn({ backend: clients[backend]!.url, model, configured, total_slots: total },
            'configured slot count exceeds the server\'s total_slots; using only the real slots');
          pool.limitSlots(backend, model, total);
        } else if (total > configured) {
          log.info({ backend: clients[backend]!.url, model, configured, total_slots: total },
            'server has more slots than configured; using the configured count');
        }
      })
      .catch(() => {
        slotChecks.delete(id);
      });
    slotChecks.set(id, check);
    return check;
  }

  function diskMatch(backend: number, prompt: { model: string; blocks: readonly string[] }): DiskMatch | undefined {
    const best = index.findBest({
      model: prompt.model,
      wpb: config.wordsPerBlock,
      blocks: [...prompt.blocks],
      lcpTh: config.lcpTh,
      // Seed-written metas name no backend: their files were written by the first (then only) backend.
      accept: (meta) => (meta.backend === undefined ? 0 : backendIndexByUrl.get(meta.backend)) === backend,
    });
    return best && { key: best.meta.key, backend, lcp: best.lcp, ratio: best.ratio };
  }

  return { ...deps, ensureBackendKinds, reconcileLoadedModels, checkSlotCount, diskMatch };
}
