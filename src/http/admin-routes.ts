/**
 * The admin API under `/proxycache/` (behind the same access check as the status API): delete a cache entry, run
 * the cleanup now, save every unsaved slot now, erase a slot. Each one acts through the module that owns the state
 * (index and meta store, cleanup job, slot pool), so no request in progress is disturbed.
 */
import type { FastifyInstance } from 'fastify';
import type { LlamaClient } from '../backend/llama-client.js';
import { removeEntry } from '../cache/entry-removal.js';
import type { EntryRemovalDeps } from '../cache/entry-removal.js';
import type { CacheCleanup } from '../cleanup/cache-cleanup.js';
import { badRequest, ProxyError } from '../errors.js';
import type { RamRescues } from '../slots/ram-rescue.js';
import type { SlotCache } from '../slots/slot-cache.js';
import { eraseSlot } from '../slots/slot-erase.js';
import type { SlotPool } from '../slots/slot-pool.js';
import { saveAllNow } from '../slots/save-now.js';
import type { AccessCheck } from './access.js';

export interface AdminRouteDeps extends EntryRemovalDeps {
  access: AccessCheck;
  pool: SlotPool;
  slotCache: SlotCache;
  /** Answers left to the servers' RAM caches unsaved: a save now brings them to disk too. */
  rescues: Pick<RamRescues, 'saveAllNow'>;
  clients: readonly LlamaClient[];
  cleanup: Pick<CacheCleanup, 'runOnce'>;
  /** The model a plain llama-server's slot actions name (MODEL_ID). */
  defaultModel: string;
  /** How long an erase waits for the request using the slot. */
  eraseWaitMs: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export function registerAdminRoutes(app: FastifyInstance, deps: AdminRouteDeps): void {
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => deps.access(request));

    // A wildcard, not `:key`: a parameter longer than Fastify's limit, or with a slash, would fall through to a 404;
    // every malformed key gets its 400.
    scope.delete<{ Params: { '*': string } }>('/proxycache/entries/*', async (request) => {
      const removal = await removeEntry(deps, request.params['*']);
      switch (removal.outcome) {
        case 'invalid_key':
          throw badRequest('not a cache key: 1-200 characters of A-Z a-z 0-9 . _ -, no leading dot, no ".."', 'key');
        case 'not_found':
          throw new ProxyError(404, 'entry_not_found', 'no cache entry with this key');
        case 'in_use':
          throw new ProxyError(409, 'entry_in_use', 'a save or restore is using this entry now; try again');
        case 'file_error':
          throw new ProxyError(
            500,
            'entry_not_removed',
            `the cache file could not be deleted (${removal.error}); entry kept`,
          );
      }
      // A slot still holds that content: it is no longer on disk, so it is saved again before being overwritten.
      deps.pool.markUnsaved(removal.key);
      if (!removal.metaRemoved)
        deps.log.warn(
          { key: removal.key, err: removal.metaError },
          'meta removal failed; the entry comes back at the next start',
        );
      deps.log.info({ key: removal.key, file_removed: removal.fileRemoved }, 'cache entry deleted by the admin API');
      return { deleted: removal.key, file_removed: removal.fileRemoved, meta_removed: removal.metaRemoved };
    });

    scope.post('/proxycache/cleanup', async () => deps.cleanup.runOnce());

    scope.post('/proxycache/save', async () => {
      const saves = await saveAllNow(deps.pool, deps.slotCache);
      // After the slots: a rescue's launch may clear them (on a server that clears idle slots).
      const fromRamCache = await deps.rescues.saveAllNow();
      deps.log.info(
        { saves: saves.length, from_ram_cache: fromRamCache },
        'unsaved slots and RAM-cache contents saved by the admin API',
      );
      return {
        saves: saves.map((s) => ({
          backend: s.backend,
          model: s.model,
          slot: s.slot,
          key: s.key,
          ...(s.result === 'busy' ? { ok: false, error: 'busy' } : s.result),
        })),
        from_ram_cache: { saved: fromRamCache.saved, not_saved: fromRamCache.notSaved },
      };
    });

    scope.post<{ Params: { backend: string; id: string }; Querystring: { model?: string } }>(
      '/proxycache/slots/:backend/:id/erase',
      async (request) => {
        const backend = index(request.params.backend, deps.clients.length, 'backend');
        const id = index(request.params.id, Number.MAX_SAFE_INTEGER, 'id');
        const model = request.query.model;
        const matches = deps.pool
          .all()
          .filter(
            (s) =>
              s.backend === backend &&
              s.id === id &&
              !s.disabled &&
              (model === undefined || s.model === '' || s.model === model),
          );
        if (matches.length === 0)
          throw new ProxyError(
            404,
            'slot_not_found',
            `backend ${backend} has no slot ${id}${model === undefined ? '' : ` for model ${model}`} in use by the proxy`,
          );
        if (matches.length > 1)
          throw badRequest(
            `slot ${id} of backend ${backend} exists for several models: name one with ?model=`,
            'model',
          );
        const slot = matches[0]!;
        const slotModel = slot.model === '' ? (model ?? deps.defaultModel) : slot.model;
        const result = await eraseSlot(deps.pool, deps.clients[backend]!, slot, slotModel, {
          timeoutMs: deps.eraseWaitMs,
        }).catch((err: unknown) => {
          if (err instanceof ProxyError && err.code === 'no_slot_available') {
            throw new ProxyError(
              503,
              'slot_busy',
              `slot ${id} stayed busy for ${deps.eraseWaitMs / 1000} s; try again`,
            );
          }
          throw err;
        });
        if (result.status !== undefined && !result.erased) {
          throw new ProxyError(
            502,
            'erase_failed',
            `the backend answered ${result.status} to the erase: ${JSON.stringify(result.body).slice(0, 200)}`,
          );
        }
        deps.log.info(
          { backend: deps.clients[backend]!.url, slot: id, model: slotModel, erased: result.erased },
          'slot erased by the admin API',
        );
        return {
          backend,
          slot: id,
          model: slotModel,
          erased: result.erased,
          ...(result.body && { response: result.body }),
        };
      },
    );
  });
}

/** A path segment that must be a non-negative integer below `limit`; 404 otherwise (no such thing to address). */
function index(raw: string, limit: number, what: string): number {
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(n < limit))
    throw new ProxyError(404, `${what === 'backend' ? 'backend' : 'slot'}_not_found`, `no ${what} ${raw}`);
  return n;
}
