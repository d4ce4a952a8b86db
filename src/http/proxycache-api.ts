/**
 * The proxy's own API put together from its state: the read-only status API under `/proxycache/`
 * (observe-routes.ts), the admin API beside it (admin-routes.ts) and the Prometheus metrics (metrics-route.ts).
 * Built once by createProxy; the routes get narrow views of the state, never the whole context.
 */
import type { FastifyInstance } from 'fastify';
import type { Observation } from '../observe/observation.js';
import { buildEntries, buildStatus } from '../observe/status.js';
import type { StatusSources } from '../observe/status.js';
import { packageVersion } from '../version.js';
import { accessCheck } from './access.js';
import type { Backends } from '../backend/backends.js';
import type { PrefixIndex } from '../cache/prefix-index.js';
import type { CacheCleanup } from '../cleanup/cache-cleanup.js';
import type { Config } from '../config/index.js';
import type { RestoreEconomics } from '../slots/restore-economics.js';
import type { RamRescues } from '../slots/ram-rescue.js';
import type { SlotCache } from '../slots/slot-cache.js';
import type { SlotPool } from '../slots/slot-pool.js';
import type { Logger } from 'pino';
import { registerAdminRoutes } from './admin-routes.js';
import { registerMetricsRoutes } from './metrics-route.js';
import { registerObserveRoutes } from './observe-routes.js';

export type ProxycacheApiDeps = Pick<Observation, 'observer' | 'probe' | 'startedAt'>;

/** The proxy's state the status and admin API read and act through. */
export interface ProxycacheState {
  config: Pick<Config, 'adminToken' | 'cacheDir' | 'modelId' | 'savePolicy' | 'backends' | 'cacheMaxSizeGb'>;
  backends: Backends;
  pool: SlotPool;
  index: PrefixIndex;
  slotCache: SlotCache;
  rescues: Pick<RamRescues, 'saveAllNow' | 'waiting' | 'ramTier'>;
  economics: Pick<RestoreEconomics, 'speeds'>;
  metaStore: { remove(key: string): Promise<void> };
  cleanup: Pick<CacheCleanup, 'runOnce'>;
  log: Logger;
}

/** How long an erase waits for the request using the slot. */
const ERASE_WAIT_MS = 30_000;

/** The status and admin API under /proxycache/ and the metrics (`/metrics`, `/metrics/backends/{index}`). */
export function registerProxycacheApi(app: FastifyInstance, state: ProxycacheState, deps: Observation): void {
  const clients = state.backends.clients;
  registerMetricsRoutes(app, deps.metrics, clients);
  const access = accessCheck(state.config.adminToken);
  registerAdminRoutes(app, {
    access,
    index: state.index,
    metaStore: state.metaStore,
    cacheDir: state.config.cacheDir,
    pool: state.pool,
    slotCache: state.slotCache,
    rescues: state.rescues,
    clients,
    cleanup: state.cleanup,
    defaultModel: state.config.modelId,
    eraseWaitMs: ERASE_WAIT_MS,
    log: state.log,
  });
  const sources = statusSources(state, deps);
  registerObserveRoutes(app, {
    access,
    observer: deps.observer,
    status: async () => buildStatus(sources, await deps.probe.reports()),
    entries: () => buildEntries(state.index.entries(), Date.now()),
  });
}

/** The status API's narrow view of the proxy's state. */
function statusSources(state: ProxycacheState, deps: ProxycacheApiDeps): StatusSources {
  const { backends } = state;
  return {
    version: packageVersion(),
    startedAt: deps.startedAt,
    config: state.config,
    clients: backends.clients,
    slots: () => state.pool.all(),
    entries: () => state.index.entries(),
    clearsIdleSlots: (index) => {
      const { behaviour } = backends.at(index);
      return behaviour.settled() ? behaviour.clearsIdleSlots() : undefined;
    },
    ramCacheMib: (index) => backends.at(index).ramCache.limitMiB,
    knownFingerprints: (index) => backends.at(index).knownFingerprints(),
    speeds: () => state.economics.speeds(),
    totals: () => deps.observer.totalsSinceStart(),
    inRamCacheOnly: () => state.rescues.waiting,
    ramTier: (index) => state.rescues.ramTier(index),
  };
}
