/**
 * createProxy(config) wires the modules together (clients, index, slot pool, cache operations, cleanup job, HTTP
 * app) without listening, so tests and main share one construction path. `close()` stops everything in order.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createLlamaClient } from './backend/llama-client.js';
import { createMetaStore } from './cache/meta-store.js';
import { PrefixIndex } from './cache/prefix-index.js';
import { createCacheCleanup } from './cleanup/cache-cleanup.js';
import type { Config } from './config/index.js';
import { createApp } from './http/app.js';
import { createProxyContext } from './http/context.js';
import type { ProxyContext } from './http/context.js';
import { createSlotCache } from './slots/slot-cache.js';
import { SlotPool } from './slots/slot-pool.js';
import { RestoreEconomics } from './slots/restore-economics.js';
import { PromptAnalyzer } from './prompt/prompt-analyzer.js';
import { IdleSaver } from './slots/idle-saver.js';
import { BackendActivity } from './backend/backend-activity.js';
import { skipSaveBy } from './slots/save-skip.js';
import { unsavedBigContent } from './slots/slot-planner.js';

export interface Proxy {
  app: FastifyInstance;
  ctx: ProxyContext;
  /** Listen on config.host:config.port (or the given port); resolves with the base URL. */
  listen(port?: number): Promise<string>;
  /** Stop listening, let answers in progress finish (bounded), save what must be saved, close. Idempotent. */
  close(): Promise<void>;
}

/** How long answers still streaming at shutdown may take before their connections are closed. */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * Graceful shutdown under the smart policy: save every slot whose content is not on disk yet. No request waits for
 * these saves, so only SAVE_MIN_NEW_TOKENS lets content go, not the save-versus-prefill costs.
 */
async function saveOnShutdown(ctx: ProxyContext): Promise<void> {
  const skipSave = skipSaveBy({ minNewTokens: ctx.config.saveMinNewTokens, onDisk: (key) => ctx.index.get(key) !== undefined });
  for (const slot of ctx.pool.all()) {
    const content = unsavedBigContent(slot, skipSave);
    if (!content || slot.busy) continue;
    const result = await ctx.slotCache.save(slot, content);
    ctx.log.info({ backend: ctx.clients[slot.backend]!.url, slot: slot.id, key: content.key.slice(0, 16), save: result }, 'saved on shutdown');
  }
}

export async function createProxy(config: Config, log: Logger): Promise<Proxy> {
  const clients = config.backends.map((b) =>
    createLlamaClient({
      url: b.url,
      kind: b.type === 'auto' ? undefined : b.type,
      connectTimeoutMs: config.connectTimeout * 1000,
      requestTimeoutMs: config.requestTimeout * 1000,
    }),
  );
  const metaStore = createMetaStore(config.metaDir);
  const index = new PrefixIndex();
  const { metas, problems } = await metaStore.loadAll();
  for (const meta of metas) index.add(meta);
  for (const problem of problems) log.warn(problem, 'unreadable meta file set aside');
  log.info({ meta_dir: config.metaDir, entries: index.size }, 'cache index loaded');

  const pool = new SlotPool(
    config.backends.map((b, i) => ({ nSlots: b.nSlots, sharedAcrossModels: () => (clients[i]!.kind ?? 'llama-server') === 'llama-server' })),
  );
  const smart = config.savePolicy === 'smart';
  const economics = new RestoreEconomics();
  const activity = new BackendActivity();
  const slotCache = createSlotCache({
    clients,
    index,
    metaStore,
    wordsPerBlock: config.wordsPerBlock,
    log,
    ...(smart && config.cacheDir && { lineage: { cacheDir: config.cacheDir } }),
    ...(smart && { economics }),
    activity,
  });
  const analyzer = new PromptAnalyzer({
    modelId: config.modelId,
    wordsPerBlock: config.wordsPerBlock,
    bigThresholdWords: config.bigThresholdWords,
  });
  const idleSaver = smart && config.idleSaveSeconds > 0
    ? new IdleSaver({
      pool,
      slotCache,
      log,
      idleMs: config.idleSaveSeconds * 1000,
      // The eviction's own rule: the idle save does early exactly the save an eviction would do.
      unsaved: (slot) => unsavedBigContent(slot, ctx.skipSave),
      describeBackend: (backend) => clients[backend]!.url,
    })
    : undefined;
  const ctx = createProxyContext({
    config, clients, pool, index, slotCache, economics, analyzer, activity, log, ...(idleSaver && { idleSaver }),
  });
  const app = createApp(ctx, { shutdownGraceMs: SHUTDOWN_GRACE_MS });
  const cleanup = createCacheCleanup({
    cacheDir: config.cacheDir ?? '',
    maxAgeHours: config.cacheMaxAgeHours,
    maxSizeGb: config.cacheMaxSizeGb,
    intervalMinutes: config.cacheCleanupIntervalMinutes,
    index,
    metaStore,
    log,
  });

  let closing: Promise<void> | undefined;
  return {
    app,
    ctx,
    async listen(port = config.port) {
      await ctx.ensureBackendKinds();
      cleanup.start();
      const address = await app.listen({ host: config.host, port });
      log.info({ address, backends: clients.map((c) => ({ url: c.url, kind: c.kind ?? 'unknown' })) }, 'proxycache listening');
      return address;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };

  async function shutdown(): Promise<void> {
    // Answers in progress get a grace period to finish (their slots are then saved), then are cut.
    const grace = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    // A keep-alive socket whose answer ends after close() began would otherwise linger until its timeout; once no
    // chat answer is in progress, whatever is left (half-read requests, stray sockets) is closed too.
    const sweep = setInterval(() => {
      if (ctx.inflight.size === 0) app.server.closeAllConnections();
      else app.server.closeIdleConnections();
    }, 50);
    await app.close();
    clearTimeout(grace);
    clearInterval(sweep);
    // Replies are out, but a handler may still be saving; wait for it, then keep what only the slots hold.
    await Promise.allSettled([...ctx.inflight]);
    await idleSaver?.close();
    if (smart) await saveOnShutdown(ctx);
    await cleanup.stop();
    await Promise.all(clients.map((c) => c.close()));
  }
}
