/**
 * Everything the proxy does not handle itself goes to the first backend unchanged (`/v1/completions`, `/tokenize`,
 * `/props`…), body and answer streamed. Slot actions are the exception: the proxy owns the slots, and a client that
 * saved or restored behind its back would make its picture of them wrong.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { once } from 'node:events';
import { track } from './inflight.js';
import { ProxyError } from '../errors.js';
import type { ProxyContext } from './context.js';
import { requestHeadersForUpstream, responseHeadersForClient } from './upstream-headers.js';

export function registerPassthrough(scope: FastifyInstance, ctx: ProxyContext): void {
  // Raw bytes for any content type: the backend, not the proxy, judges these bodies.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  scope.all('/*', (request, reply) => track(ctx, passThrough(request, reply)));

  async function passThrough(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const path = request.url;
    if (/^\/(upstream\/[^/]+\/)?slots\/[^/?]+/.test(path) && request.method === 'POST') {
      throw new ProxyError(403, 'slots_managed_by_proxy', 'slot actions are managed by proxycache and are not passed through');
    }
    const abort = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const client = ctx.clients[0]!;
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
