/**
 * One error handler for every route: each failure reaches the client as a ProxyError in the OpenAI error shape,
 * with the right status. The cause of an unexpected failure (message and stack) goes to the log, never to the client.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ProxyError } from '../errors.js';

/** `onInternalError` hears of every unexpected failure (the proxy's own health counts them). */
export function registerErrorHandler(
  app: FastifyInstance,
  log: Logger,
  limits: { maxBodyMb: number },
  onInternalError: (err: unknown) => void = () => undefined,
): void {
  app.setErrorHandler(errorHandler(log, limits, onInternalError));
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new ProxyError(404, 'not_found', `no route for ${request.method} ${request.url}`).toJSON());
  });
}


/**
 * The error handler: logs, counts internal failures and answers with `render` (default: the OpenAI envelope). A
 * scope whose routes speak another API sets one with that API's error shape.
 */
export function errorHandler(
  log: Logger,
  limits: { maxBodyMb: number },
  onInternalError: (err: unknown) => void,
  render: (err: ProxyError) => unknown = (err) => err.toJSON(),
): (error: FastifyError | ProxyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (error, request, reply) => {
    const proxyError = toProxyError(error, limits.maxBodyMb);
    if (proxyError.code === 'internal_error') onInternalError(error);
    if (proxyError.status >= 500) logFailure(log, request, proxyError);
    if (reply.sent || reply.raw.headersSent) return;
    void reply.code(proxyError.status).send(render(proxyError));
  };
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
    return new ProxyError(413, 'body_too_large', `the request body is larger than MAX_BODY_MB (${maxBodyMb} MB)`, { cause: error });
  }
  const code = error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type'
    : error.code?.startsWith('FST_ERR_CTP') ? 'invalid_json' : 'invalid_request';
  const message = code === 'invalid_json' ? `invalid JSON body: ${error.message}` : error.message;
  return new ProxyError(status, code, message, { cause: error });
}
