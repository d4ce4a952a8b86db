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
import { registerProxycacheApi } from './http/proxycache-api.js';
import { createObservation } from './observe/observation.js';
import type { ProxyContext } from './http/context.js';
import { createSlotCache } from './slots/slot-cache.js';
import { SlotPool } from './slots/slot-pool.js';
import { RestoreEconomics } from './slots/restore-economics.js';
import { PromptAnalyzer } from './prompt/prompt-analyzer.js';
import { createSavePolicy } from './slots/save-policy.js';
import { ServerBehaviour } from './backend/server-behaviour.js';
import { ResaveRent } from './slots/resave-rent.js';
import { LaunchGate } from './slots/launch-gate.js';
import { BackendActivity } from './backend/backend-activity.js';
import { unsavedBigContent } from './slots/slot-planner.js';
import { unsavedAtShutdown } from './slots/shutdown-saves.js';
import type { ShutdownSaveDeps } from './slots/shutdown-saves.js';

export interface Proxy {
  app: FastifyInstance;
  ctx: ProxyContext;
  /** Listen on config.host:config.port (or the given port); resolves with the base URL. */
  listen(port?: number): Promise<string>;
  /**
   * Stop listening, let answers in progress finish, save what must be saved, close; all within
   * SHUTDOWN_TIMEOUT_SECONDS, after which what still runs is aborted and what was not saved is logged. Idempotent.
   */
  close(): Promise<void>;
}

/** The part of SHUTDOWN_TIMEOUT_SECONDS that answers still streaming may take before their connections are closed. */
const ANSWERS_SHARE = 1 / 3;

export async function createProxy(config: Config, log: Logger): Promise<Proxy> {
  const clients = config.backends.map((b) =>
    createLlamaClient({
      url: b.url,
      kind: b.type === 'auto' ? undefined : b.type,
      connectTimeoutMs: config.connectTimeout * 1000,
      requestTimeoutMs: config.requestTimeout * 1000,
      apiKey: config.backendApiKey,
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
  const economics = new RestoreEconomics();
  const resaveRent = new ResaveRent();
  const onDisk = (key: string) => index.get(key) !== undefined;
  const policy = createSavePolicy(config.savePolicy, {
    minNewTokens: config.saveMinNewTokens,
    wordsPerBlock: config.wordsPerBlock,
    cacheDir: config.cacheDir,
    economics,
    rent: resaveRent,
    onDisk,
    log,
  });
  const observation = createObservation({
    clients,
    slots: () => pool.all(),
    entries: () => index.entries(),
    entryCount: () => index.size,
    unsaved: (slot) => unsavedBigContent(slot, policy.skipSave) !== undefined,
    prefillMsPerToken: (model) => economics.prefillMsPerToken(model),
  });
  const activity = new BackendActivity();
  const behaviour = new ServerBehaviour();
  const launchGate = new LaunchGate();
  const slotCache = createSlotCache({
    clients,
    slots: pool,
    index,
    metaStore,
    wordsPerBlock: config.wordsPerBlock,
    log,
    policy,
    activity,
    ...(config.cacheDir && { cacheDir: config.cacheDir }),
    onResult: (action, result) => observation.metrics.noteCacheOp(action, result),
    onIdleSlotCleared: (backend) => {
      if (behaviour.noteClearsIdleSlots(backend)) {
        log.warn({ backend: clients[backend]!.url }, 'the server clears idle slots when a task starts (a save found a slot empty); saving idle slots before each task from now on');
      }
    },
  });
  const analyzer = new PromptAnalyzer({
    modelId: config.modelId,
    wordsPerBlock: config.wordsPerBlock,
    bigThresholdWords: config.bigThresholdWords,
  });
  const answerSaver = policy.createAnswerSaver({
    pool,
    slotCache,
    log,
    windowMs: config.idleSaveSeconds * 1000,
    describeBackend: (backend) => clients[backend]!.url,
  });
  const ctx = createProxyContext({
    config, clients, pool, index, slotCache, economics, analyzer, activity, behaviour, resaveRent, launchGate, log,
    observer: observation.observer, policy, answerSaver,
  });
  const cleanup = createCacheCleanup({
    cacheDir: config.cacheDir ?? '',
    maxAgeHours: config.cacheMaxAgeHours,
    maxSizeGb: config.cacheMaxSizeGb,
    intervalMinutes: config.cacheCleanupIntervalMinutes,
    index,
    metaStore,
    log,
    onRun: (stats) => observation.metrics.noteCleanup(stats),
  });
  // Answers in progress get part of the shutdown time; meanwhile new requests get 503 (shutdown-drain.ts).
  const app = createApp(ctx, { shutdownGraceMs: config.shutdownTimeoutSeconds * 1000 * ANSWERS_SHARE });
  registerProxycacheApi(app, ctx, observation, { metaStore, cleanup });

  const shutdownSaves: ShutdownSaveDeps = {
    pool,
    slotCache,
    log,
    minNewTokens: config.saveMinNewTokens,
    onDisk,
    describeBackend: (backend) => clients[backend]!.url,
  };
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
    const timeoutMs = config.shutdownTimeoutSeconds * 1000;
    const deadline = new AbortController();
    const expired = new Promise<void>((resolve) => deadline.signal.addEventListener('abort', () => resolve(), { once: true }));
    const timers = [
      // Answers in progress get part of the time to finish (their slots are then saved), then are cut.
      setTimeout(() => app.server.closeAllConnections(), timeoutMs * ANSWERS_SHARE),
      setTimeout(() => deadline.abort(), timeoutMs),
    ];
    // A keep-alive socket whose answer ends after close() began would otherwise linger until its timeout; once no
    // chat answer is in progress, whatever is left (half-read requests, stray sockets) is closed too.
    const sweep = setInterval(() => {
      if (ctx.inflight.size === 0) app.server.closeAllConnections();
      else app.server.closeIdleConnections();
    }, 50);
    try {
      await Promise.race([drainAndSave(deadline.signal), expired]);
    } finally {
      for (const timer of timers) clearTimeout(timer);
      clearInterval(sweep);
    }
    if (deadline.signal.aborted) {
      app.server.closeAllConnections();
      log.warn({ timeout_s: config.shutdownTimeoutSeconds, not_saved: unsavedAtShutdown(shutdownSaves), handlers_running: ctx.inflight.size },
        'shutdown deadline reached; aborting what is still running');
    }
    await cleanup.stop();
    // At the deadline, requests still waiting on a backend (a hung save) are aborted rather than awaited.
    await Promise.all(clients.map((c) => (deadline.signal.aborted ? c.destroy() : c.close())));
  }

  async function drainAndSave(signal: AbortSignal): Promise<void> {
    await app.close();
    // Replies are out, but a handler may still be saving; wait for it, then keep what only the slots hold.
    await Promise.allSettled([...ctx.inflight]);
    await answerSaver.close();
    await policy.saveOnShutdown(shutdownSaves, signal);
  }
}
