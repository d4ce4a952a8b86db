/**
 * createProxy(config) wires the modules together without listening, so tests and main share one construction
 * path: the backends and their slot pool, the index and meta store, the save policy (chosen here, once), the slot
 * cache, the generation flow's collaborators, the HTTP app and the cleanup job. `close()` stops everything in order.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createBackends } from './backend/backends.js';
import type { Backends } from './backend/backends.js';
import { createDiskMatcher } from './cache/disk-match.js';
import { createMetaStore } from './cache/meta-store.js';
import { PrefixIndex } from './cache/prefix-index.js';
import { createCacheCleanup } from './cleanup/cache-cleanup.js';
import type { Config } from './config/index.js';
import type { GenerationDeps } from './generation/deps.js';
import { prepareForModel } from './generation/model-swap.js';
import { PendingModels } from './generation/pending-models.js';
import { createApp } from './http/app.js';
import type { Inflight } from './http/inflight.js';
import { registerProxycacheApi } from './http/proxycache-api.js';
import { createObservation } from './observe/observation.js';
import { createSlotCache } from './slots/slot-cache.js';
import type { SlotPool } from './slots/slot-pool.js';
import { RestoreEconomics } from './slots/restore-economics.js';
import { PromptAnalyzer } from './prompt/prompt-analyzer.js';
import { createSavePolicy } from './slots/save-policy.js';
import { ResaveRent } from './slots/resave-rent.js';
import { BookedSaves } from './slots/booked-saves.js';
import { RamRescues } from './slots/ram-rescue.js';
import { shortKey } from './cache/meta-file.js';
import { rescueFromServerRam } from './generation/ram-rescue-launch.js';
import { LaunchGate } from './slots/launch-gate.js';
import { BackendActivity } from './backend/backend-activity.js';
import { SmallPromptsFirst } from './backend/small-prompts-first.js';
import { unsavedBigContent } from './slots/slot-planner.js';
import { unsavedAtShutdown } from './slots/shutdown-saves.js';
import type { ShutdownSaveDeps } from './slots/shutdown-saves.js';

export interface Proxy {
  app: FastifyInstance;
  /** The state tests may inspect (read): slots, index, prompt analyzer, learnt speeds. */
  state: {
    backends: Backends;
    pool: SlotPool;
    index: PrefixIndex;
    analyzer: PromptAnalyzer;
    economics: RestoreEconomics;
  };
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
  const { backends, pool } = createBackends(config, log);
  const clients = backends.clients;
  const metaStore = createMetaStore(config.metaDir);
  const index = new PrefixIndex();
  const { metas, problems } = await metaStore.loadAll();
  for (const meta of metas) index.add(meta);
  for (const problem of problems) log.warn(problem, 'unreadable meta file set aside');
  log.info({ meta_dir: config.metaDir, entries: index.size }, 'cache index loaded');

  const economics = new RestoreEconomics();
  const rent = new ResaveRent();
  const onDisk = (key: string) => index.get(key) !== undefined;
  const policy = createSavePolicy(config.savePolicy, {
    minNewTokens: config.saveMinNewTokens,
    wordsPerBlock: config.wordsPerBlock,
    cacheDir: config.cacheDir,
    economics,
    rent,
    onDisk,
    log,
  });
  const observation = createObservation({
    clients,
    slots: () => pool.all(),
    entries: () => index.entries(),
    entryCount: () => index.size,
    unsaved: (slot) => unsavedBigContent(slot, policy.skipSave) !== undefined,
    waitingForSlot: () => pool.waiting(),
    inRamCacheOnly: () => rescues.waiting,
    prefillMsPerToken: (model) => economics.prefillMsPerToken(model),
  });
  const activity = new BackendActivity();
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
    onStateSize: (backend, model, tokens, bytes) => backends.at(backend).ramCache.learnTokenSize(model, tokens, bytes),
    onIdleSlotCleared: (backend, content) => {
      const at = backends.at(backend);
      if (at.behaviour.keepsIdleSlots()) {
        // A server seen keeping its idle slots did not clear this one: it restarted (or another client erased it),
        // and its RAM cache holds nothing of it. Taken for a clearing, the proxy would switch to that regime.
        log.warn(
          { backend: at.url, key: shortKey(content.key) },
          'a slot of a server that keeps idle slots was found empty (restarted?); forgetting what its slots held',
        );
        at.forget();
        return;
      }
      at.ramCache.note(content);
      // Left there and found cleared by a save after the answer: it still has to reach the disk in time.
      rescues.cleared(content);
      at.noteClearsIdleSlots('empty save');
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
  const rescues = new RamRescues({
    windowMs: policy.leavesToServerRam ? config.idleSaveSeconds * 1000 : 0,
    rescue: (backend, content, replay) => rescueFromServerRam(generation, backend, content, replay),
    log,
    describeBackend: (backend) => clients[backend]!.url,
  });
  const swapDeps = {
    backends,
    pool,
    slotCache,
    skipSave: policy.skipSave,
    rent,
    rescues,
    log,
    acquireTimeoutMs: config.acquireTimeout * 1000,
    loadTimeoutMs: config.requestTimeout * 1000,
  };
  const generation: GenerationDeps = {
    analyzer,
    backends,
    pool,
    index,
    slotCache,
    policy,
    answerSaver,
    bookedSaves: new BookedSaves(slotCache, (slot) => {
      const { behaviour } = backends.at(slot.backend);
      return behaviour.clearsIdleSlots() && behaviour.mayEndSoon(slot);
    }),
    activity,
    rent,
    log,
    diskMatch: createDiskMatcher({ index, backends, policy, wordsPerBlock: config.wordsPerBlock, lcpTh: config.lcpTh }),
    prepareForModel: (model, big) => prepareForModel(swapDeps, model, big),
    pending: new PendingModels(),
    launchGate: new LaunchGate(),
    smallFirst: new SmallPromptsFirst(),
    rescues,
    observer: observation.observer,
    lcpTh: config.lcpTh,
    acquireTimeoutMs: config.acquireTimeout * 1000,
  };
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
  const inflight: Inflight = new Set();
  const app = createApp({
    config,
    log,
    generation,
    clients,
    inflight,
    slots: () => pool.all(),
    entryCount: () => index.size,
    // Answers in progress get part of the shutdown time; meanwhile new requests get 503 (shutdown-drain.ts).
    shutdownGraceMs: config.shutdownTimeoutSeconds * 1000 * ANSWERS_SHARE,
  });
  registerProxycacheApi(
    app,
    { config, backends, pool, index, slotCache, rescues, economics, metaStore, cleanup, log },
    observation,
  );

  const shutdownSaves: ShutdownSaveDeps = {
    pool,
    slotCache,
    log,
    skipSave: policy.idleSkipSave,
    describeBackend: (backend) => clients[backend]!.url,
  };
  let closing: Promise<void> | undefined;
  return {
    app,
    state: { backends, pool, index, analyzer, economics },
    async listen(port = config.port) {
      await backends.ensureReady();
      cleanup.start();
      const address = await app.listen({ host: config.host, port });
      log.info(
        { address, backends: clients.map((c) => ({ url: c.url, kind: c.kind ?? 'unknown' })) },
        'proxycache listening',
      );
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
    const expired = new Promise<void>((resolve) =>
      deadline.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    const timers = [
      // Answers in progress get part of the time to finish (their slots are then saved), then are cut.
      setTimeout(() => app.server.closeAllConnections(), timeoutMs * ANSWERS_SHARE),
      setTimeout(() => deadline.abort(), timeoutMs),
    ];
    // A keep-alive socket whose answer ends after close() began would otherwise linger until its timeout; once no
    // chat answer is in progress, whatever is left (half-read requests, stray sockets) is closed too.
    const sweep = setInterval(() => {
      if (inflight.size === 0) app.server.closeAllConnections();
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
      log.warn(
        {
          timeout_s: config.shutdownTimeoutSeconds,
          not_saved: unsavedAtShutdown(shutdownSaves),
          in_ram_cache_only: rescues.waiting,
          handlers_running: inflight.size,
        },
        'shutdown deadline reached; aborting what is still running',
      );
    }
    await cleanup.stop();
    // At the deadline, requests still waiting on a backend (a hung save) are aborted rather than awaited.
    await Promise.all(clients.map((c) => (deadline.signal.aborted ? c.destroy() : c.close())));
  }

  async function drainAndSave(signal: AbortSignal): Promise<void> {
    await app.close();
    // Replies are out, but a handler may still be saving; wait for it, then keep what only the slots hold.
    await Promise.allSettled([...inflight]);
    await answerSaver.close();
    // What the slots hold first: the rescues' own launches clear them.
    await policy.saveOnShutdown(shutdownSaves, signal);
    await rescues.close();
  }
}
