/**
 * createApp(ctx) builds the HTTP server (never listens): chat completions, models, health, and a passthrough of
 * everything else to the first backend. One error handler renders every failure in the OpenAI error shape.
 */
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.js';
import { handleChat } from './chat-route.js';
import type { ProxyContext } from './context.js';
import { registerDashboardRoute } from './dashboard-route.js';
import { registerHealthRoute } from './health-route.js';
import { track } from './inflight.js';
import { registerJsonBodyParser } from './json-body.js';
import { registerModelsRoute } from './models-route.js';
import { registerPassthrough } from './passthrough-route.js';
import { ProxyHealth } from './proxy-health.js';

/** Prompts of long IDE sessions (and inline images) are large; llama-server itself accepts big bodies. */
const BODY_LIMIT_BYTES = 256 * 1024 * 1024;

export function createApp(ctx: ProxyContext): FastifyInstance {
  // 'idle': on close, idle keep-alive sockets go at once while answers in progress may finish (see Proxy.close).
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT_BYTES, forceCloseConnections: 'idle' });

  const health = new ProxyHealth();
  registerJsonBodyParser(app);
  app.addHook('onResponse', async (request, reply) => {
    // Health checks and the dashboard are answered whatever the state; only real requests show that the proxy serves again.
    const url = request.routeOptions.url ?? '';
    if (reply.statusCode < 500 && url !== '/health' && !url.startsWith('/proxycache')) health.noteServed();
  });
  app.setErrorHandler((error: FastifyError | ProxyError, request, reply) => {
    const proxyError = toProxyError(error);
    if (proxyError.code === 'internal_error') health.noteInternalError(error);
    if (proxyError.status >= 500) {
      ctx.log.warn({ method: request.method, url: request.url, status: proxyError.status, err: proxyError.message }, 'request failed');
    }
    if (reply.sent || reply.raw.headersSent) return;
    void reply.code(proxyError.status).send(proxyError.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new ProxyError(404, 'not_found', `no route for ${request.method} ${request.url}`).toJSON());
  });

  for (const path of ['/v1/chat/completions', '/chat/completions']) {
    app.post(path, (request, reply) => track(ctx, handleChat(ctx, request, reply)));
  }
  registerModelsRoute(app, ctx);
  registerHealthRoute(app, ctx, health);
  registerDashboardRoute(app, ctx.log);
  void app.register(async (scope) => registerPassthrough(scope, ctx));
  return app;
}

/** Map framework errors (bad JSON, body too large, wrong content type) to our error type with their status. */
function toProxyError(error: FastifyError | ProxyError): ProxyError {
  if (error instanceof ProxyError) return error;
  const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
  if (status >= 500) return new ProxyError(status, 'internal_error', 'internal proxy error', { cause: error });
  const code = error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type'
    : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body_too_large'
    : error.code?.startsWith('FST_ERR_CTP') ? 'invalid_json' : 'invalid_request';
  const message = code === 'invalid_json' ? `invalid JSON body: ${error.message}` : error.message;
  return new ProxyError(status, code, message, { cause: error });
}
