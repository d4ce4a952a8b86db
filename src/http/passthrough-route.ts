/**
 * Everything the proxy does not handle itself goes unchanged (`/v1/embeddings`, `/tokenize`, `/props`…), body and
 * answer streamed, to the backend serving the model it names (model-routing.ts; the first backend when it names
 * none). The slot API and model unloads are the exception (see route-policy.ts): the
 * proxy owns the slots, and a client acting on them behind its back would make its picture of them wrong.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { once } from 'node:events';
import type { LlamaClient } from '../backend/llama-client.js';
import { track } from './inflight.js';
import type { Inflight } from './inflight.js';
import { ProxyError } from '../errors.js';
import { createModelRouter } from './model-routing.js';
import { refusedRoute } from './route-policy.js';
import type { Refusal } from './route-policy.js';
import { requestHeadersForUpstream, responseHeadersForClient } from './upstream-headers.js';

const REFUSAL_MESSAGES: Record<Refusal, string> = {
  slots_managed_by_proxy:
    'the slot API (slot actions and the slot list) is managed by proxycache and is not passed through',
  models_managed_by_proxy:
    'loading and unloading models is managed by proxycache (it saves their slots first) and is not passed through',
};

export interface PassthroughDeps {
  clients: readonly LlamaClient[];
  /** CONNECT_TIMEOUT: how long a backend's model list may take (model-routing.ts). */
  connectTimeoutMs: number;
  inflight: Inflight;
}

export function registerPassthrough(scope: FastifyInstance, deps: PassthroughDeps): void {
  // Raw bytes for any content type: the backend, not the proxy, judges these bodies.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const router = createModelRouter(deps.clients, deps.connectTimeoutMs);
  scope.all('/*', (request, reply) => track(deps.inflight, passThrough(request, reply)));

  async function passThrough(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const path = request.url;
    // Absolute-form targets (`GET http://host/path`) are for forward proxies; the backend expects a path.
    if (!path.startsWith('/'))
      throw new ProxyError(400, 'invalid_request', 'the request target must be a path starting with /');
    const refusal = refusedRoute(path);
    if (refusal) throw new ProxyError(403, refusal, REFUSAL_MESSAGES[refusal]);
    const abort = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const client = deps.clients[await router.backendFor(path, body, request.headers['content-type'])]!;
    const res = await client.forward({
      method: request.method,
      path,
      headers: requestHeadersForUpstream(request.headers),
      body: Buffer.isBuffer(request.body) && request.body.length > 0 ? request.body : undefined,
      signal: abort.signal,
    });
    // Streamed bodies (e.g. /v1/completions with stream) outlive send(): the handler lasts until the answer ended.
    const ended = once(reply.raw, 'close');
    await reply.code(res.status).headers(responseHeadersForClient(res.headers)).send(res.body);
    await ended;
    return reply;
  }
}
