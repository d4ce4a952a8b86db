/**
 * createApp(deps) builds the HTTP server (never listens): the generation routes (generation-routes.ts, Anthropic
 * Messages among them), models, health, `HEAD /`, and a passthrough of everything else. API_KEYS, when set, guards
 * them all but /health and `HEAD /`. One error handler renders every failure in its route's error shape.
 */
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { LlamaClient } from '../backend/llama-client.js';
import type { Config } from '../config/index.js';
import type { GenerationDeps } from '../generation/deps.js';
import type { SlotState } from '../slots/slot-state.js';
import { registerClientKeys } from './client-keys.js';
import { clientErrorHandler, serverOptions } from './client-limits.js';
import { registerDashboardRoute } from './dashboard-route.js';
import { registerErrorHandler } from './error-handler.js';
import { registerGenerationRoutes } from './generation-routes.js';
import { registerHealthRoute, registerRootProbe } from './health-route.js';
import type { Inflight } from './inflight.js';
import { registerJsonBodyParser } from './json-body.js';
import { registerModelsRoute } from './models-route.js';
import { registerPassthrough } from './passthrough-route.js';
import { ProxyHealth } from './proxy-health.js';
import { registerShutdownDrain } from './shutdown-drain.js';

export interface AppDeps {
  /** Client limits, API_KEYS, CONNECT_TIMEOUT. */
  config: Config;
  log: Logger;
  /** The generation flow's collaborators (generation-routes.ts). */
  generation: GenerationDeps;
  /** Every backend's client: models, health and the passthrough. */
  clients: readonly LlamaClient[];
  slots: () => readonly SlotState[];
  entryCount: () => number;
  /** The handlers running now (chat and passthrough), which shutdown lets finish. */
  inflight: Inflight;
  /** On close, how long the app keeps listening (answering new requests with 503) while answers in progress finish. */
  shutdownGraceMs: number;
}

export function createApp(deps: AppDeps): FastifyInstance {
  const { config, log, inflight, clients } = deps;
  const app = Fastify({
    logger: false,
    // 'idle': on close, idle keep-alive sockets go at once while answers in progress may finish (see Proxy.close).
    forceCloseConnections: 'idle',
    // registerShutdownDrain answers requests that arrive while closing, in the OpenAI error shape.
    return503OnClosing: false,
    ...serverOptions(config),
    clientErrorHandler: clientErrorHandler(log),
  });

  const health = new ProxyHealth();
  registerJsonBodyParser(app);
  app.addHook('onResponse', async (request, reply) => {
    // Health checks, scrapes and the dashboard are answered whatever the state; only real requests show that the
    // proxy serves again.
    const url = request.routeOptions.url ?? '';
    if (reply.statusCode < 500 && url !== '/health' && !url.startsWith('/metrics') && !url.startsWith('/proxycache'))
      health.noteServed();
  });
  registerErrorHandler(app, log, config, (err) => health.noteInternalError(err));
  registerShutdownDrain(app, inflight, deps.shutdownGraceMs);
  registerClientKeys(app, config.apiKeys);

  const connectTimeoutMs = config.connectTimeout * 1000;
  registerGenerationRoutes(app, deps.generation, inflight);
  registerModelsRoute(app, clients, connectTimeoutMs);
  registerHealthRoute(app, { clients, slots: deps.slots, entryCount: deps.entryCount, health });
  registerRootProbe(app);
  registerDashboardRoute(app, log);
  void app.register(async (scope) => registerPassthrough(scope, { clients, connectTimeoutMs, inflight }));
  return app;
}
