/**
 * One error handler for every route: each failure reaches the client as a ProxyError with the right status, in the
 * route's own API's shape (`config.renderError`, set by the generation routes), else by path (error-shape.ts). The
 * cause of an unexpected failure (message and stack) goes to the log, never to the client.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';
import { errorBodyFor } from './error-shape.js';

/** `onInternalError` hears of every unexpected failure (the proxy's own health counts them). */
export function registerErrorHandler(
  app: FastifyInstance,
  log: Logger,
  limits: { maxBodyMb: number },
  onInternalError: (err: unknown) => void = () => undefined,
): void {
  app.setErrorHandler((error: FastifyError | ProxyError, request, reply) => {
    const proxyError = toProxyError(error, limits.maxBodyMb);
    if (proxyError.code === 'internal_error') onInternalError(error);
    if (proxyError.status >= 500) logFailure(log, request, proxyError);
    if (reply.sent || reply.raw.headersSent) return;
    const render = errorRendererOf(request);
    void reply.code(proxyError.status).send(render ? render(proxyError) : errorBodyFor(proxyError, request.url));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(
        errorBodyFor(new ProxyError(404, 'not_found', `no route for ${request.method} ${request.url}`), request.url),
      );
  });
}

/** A route's own error shape (its API's), given in the route's `config`; absent: the OpenAI envelope. */
export interface ErrorShapeConfig {
  renderError?: (err: ProxyError) => unknown;
}

function errorRendererOf(request: FastifyRequest): ((err: ProxyError) => unknown) | undefined {
  return (request.routeOptions?.config as ErrorShapeConfig | undefined)?.renderError;
}

function logFailure(log: Logger, request: FastifyRequest, error: ProxyError): void {
  const where = { method: request.method, url: request.url, status: error.status };
  // A bug or an input the proxy did not foresee: the operator needs the cause and where it was thrown.
  if (error.code === 'internal_error') log.error({ ...where, err: error.cause }, 'internal proxy error');
  else log.warn({ ...where, err: error.message }, 'request failed');
}

/** Map framework errors (bad JSON, body too large, wrong content type) to our error type with their status. */
function toProxyError(error: FastifyError | ProxyError, maxBodyMb: number): ProxyError {
  if (error instanceof ProxyError) return error;
  const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
  if (status >= 500) return new ProxyError(status, 'internal_error', 'internal proxy error', { cause: error });
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ProxyError(413, 'body_too_large', `the request body is larger than MAX_BODY_MB (${maxBodyMb} MB)`, {
      cause: error,
    });
  }
  const code =
    error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
      ? 'unsupported_media_type'
      : error.code?.startsWith('FST_ERR_CTP')
        ? 'invalid_json'
        : 'invalid_request';
  const message = code === 'invalid_json' ? `invalid JSON body: ${error.message}` : error.message;
  return new ProxyError(status, code, message, { cause: error });
}
