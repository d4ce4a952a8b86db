/**
 * Everything under `/proxycache/` put together from the proxy's state: the read-only status API (observe-routes.ts).
 * Built once by createProxy; the routes get narrow views of the state, never the whole context.
 */
import type { FastifyInstance } from 'fastify';
import type { BackendProbe } from '../observe/backend-probe.js';
import type { Observer } from '../observe/observer.js';
import { buildEntries, buildStatus } from '../observe/status.js';
import type { StatusSources } from '../observe/status.js';
import { packageVersion } from '../version.js';
import { accessCheck } from './access.js';
import type { ProxyContext } from './context.js';
import { registerObserveRoutes } from './observe-routes.js';

export interface ProxycacheApiDeps {
  observer: Observer;
  probe: BackendProbe;
  /** Milliseconds since the epoch when the proxy was created. */
  startedAt: number;
}

export function registerProxycacheApi(app: FastifyInstance, ctx: ProxyContext, deps: ProxycacheApiDeps): void {
  const sources = statusSources(ctx, deps);
  registerObserveRoutes(app, {
    access: accessCheck(ctx.config.adminToken),
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
