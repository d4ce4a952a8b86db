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
import type { ProxyContext } from './context.js';
import type { CacheCleanup } from '../cleanup/cache-cleanup.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerMetricsRoutes } from './metrics-route.js';
import { registerObserveRoutes } from './observe-routes.js';

export type ProxycacheApiDeps = Pick<Observation, 'observer' | 'probe' | 'startedAt'>;

/** What the admin API needs beyond the context. */
export interface AdminDeps {
  metaStore: { remove(key: string): Promise<void> };
  cleanup: Pick<CacheCleanup, 'runOnce'>;
}

/** How long an erase waits for the request using the slot. */
const ERASE_WAIT_MS = 30_000;

/** The status and admin API under /proxycache/ and the metrics (`/metrics`, `/metrics/backends/{index}`). */
export function registerProxycacheApi(app: FastifyInstance, ctx: ProxyContext, deps: Observation, admin: AdminDeps): void {
  registerMetricsRoutes(app, deps.metrics, ctx.clients);
  const access = accessCheck(ctx.config.adminToken);
  registerAdminRoutes(app, {
    access,
    index: ctx.index,
    metaStore: admin.metaStore,
    cacheDir: ctx.config.cacheDir,
    pool: ctx.pool,
    slotCache: ctx.slotCache,
    clients: ctx.clients,
    cleanup: admin.cleanup,
    defaultModel: ctx.config.modelId,
    eraseWaitMs: ERASE_WAIT_MS,
    log: ctx.log,
  });
  const sources = statusSources(ctx, deps);
  registerObserveRoutes(app, {
    access,
    observer: deps.observer,
    status: async () => buildStatus(sources, await deps.probe.reports()),
    entries: () => buildEntries(ctx.index.entries(), Date.now()),
  });
}

/** The status API's narrow view of the proxy's state. */
export function statusSources(ctx: ProxyContext, deps: ProxycacheApiDeps): StatusSources {
  return {
    version: packageVersion(),
    startedAt: deps.startedAt,
    config: ctx.config,
    clients: ctx.clients,
    slots: () => ctx.pool.all(),
    entries: () => ctx.index.entries(),
    clearsIdleSlots: (backend) => (ctx.behaviour.settled(backend) ? ctx.behaviour.clearsIdleSlots(backend) : undefined),
    knownFingerprints: (backend) => ctx.knownFingerprints(backend),
    speeds: () => ctx.economics.speeds(),
    totals: () => deps.observer.totalsSinceStart(),
  };
}
