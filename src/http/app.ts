/**
 * createApp(ctx) builds the HTTP server (never listens): the generation routes (generation-routes.ts, Anthropic
 * Messages among them), models, health, `HEAD /`, and a passthrough of everything else. API_KEYS, when set, guards
 * them all but /health and `HEAD /`. One error handler renders every failure in its route's error shape.
 */
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { registerClientKeys } from './client-keys.js';
import { clientErrorHandler, serverOptions } from './client-limits.js';
import type { ProxyContext } from './context.js';
import { registerDashboardRoute } from './dashboard-route.js';
import { registerErrorHandler } from './error-handler.js';
import { registerGenerationRoutes } from './generation-routes.js';
import { registerHealthRoute, registerRootProbe } from './health-route.js';
import { registerJsonBodyParser } from './json-body.js';
import { registerModelsRoute } from './models-route.js';
import { registerPassthrough } from './passthrough-route.js';
import { ProxyHealth } from './proxy-health.js';
import { registerShutdownDrain } from './shutdown-drain.js';

/**
 * `shutdownGraceMs`: on close, how long the app keeps listening (answering new requests with 503) while answers in
 * progress finish.
 */
export function createApp(ctx: ProxyContext, options: { shutdownGraceMs: number }): FastifyInstance {
  const app = Fastify({
    logger: false,
    // 'idle': on close, idle keep-alive sockets go at once while answers in progress may finish (see Proxy.close).
    forceCloseConnections: 'idle',
    // registerShutdownDrain answers requests that arrive while closing, in the OpenAI error shape.
    return503OnClosing: false,
    ...serverOptions(ctx.config),
    clientErrorHandler: clientErrorHandler(ctx.log),
  });

  const health = new ProxyHealth();
  registerJsonBodyParser(app);
  app.addHook('onResponse', async (request, reply) => {
    // Health checks, scrapes and the dashboard are answered whatever the state; only real requests show that the
    // proxy serves again.
    const url = request.routeOptions.url ?? '';
    if (reply.statusCode < 500 && url !== '/health' && !url.startsWith('/metrics') && !url.startsWith('/proxycache')) health.noteServed();
  });
  registerErrorHandler(app, ctx.log, ctx.config, (err) => health.noteInternalError(err));
  registerShutdownDrain(app, ctx.inflight, options.shutdownGraceMs);
  registerClientKeys(app, ctx.config.apiKeys);

  registerGenerationRoutes(app, ctx);
  registerModelsRoute(app, ctx);
  registerHealthRoute(app, ctx, health);
  registerRootProbe(app);
  registerDashboardRoute(app, ctx.log);
  void app.register(async (scope) => registerPassthrough(scope, ctx));
  return app;
}
