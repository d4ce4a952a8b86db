/**
 * createApp(ctx) builds the HTTP server (never listens): chat completions, Anthropic messages, models, health, and a
 * passthrough of everything else to the first backend. One error handler renders every failure in the OpenAI error
 * shape, except on the Messages routes (Anthropic's shape).
 */
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { handleChat } from './chat-route.js';
import { clientErrorHandler, serverOptions } from './client-limits.js';
import type { ProxyContext } from './context.js';
import { registerErrorHandler } from './error-handler.js';
import { registerHealthRoute } from './health-route.js';
import { track } from './inflight.js';
import { registerJsonBodyParser } from './json-body.js';
import { registerMessagesRoutes, registerRootProbe } from './messages-route.js';
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
    // Health checks are answered whatever the state; only real requests show that the proxy serves again.
    if (reply.statusCode < 500 && request.routeOptions.url !== '/health') health.noteServed();
  });
  const onInternalError = (err: unknown) => health.noteInternalError(err);
  registerErrorHandler(app, ctx.log, ctx.config, onInternalError);
  registerShutdownDrain(app, ctx.inflight, options.shutdownGraceMs);

  for (const path of ['/v1/chat/completions', '/chat/completions']) {
    app.post(path, (request, reply) => track(ctx, handleChat(ctx, request, reply)));
  }
  void app.register(async (scope) => registerMessagesRoutes(scope, ctx, onInternalError));
  registerRootProbe(app);
  registerModelsRoute(app, ctx);
  registerHealthRoute(app, ctx, health);
  void app.register(async (scope) => registerPassthrough(scope, ctx));
  return app;
}
