/**
 * API_KEYS: every client request presents one of the keys, as `Authorization: Bearer <key>` or `x-api-key: <key>`
 * (the OpenAI and the Anthropic clients' headers), else 401 in its route's error shape. Open without a key:
 * `/health` (monitors and load balancers), `HEAD /` (Claude Code's probe, sent without its key; it answers an empty
 * 200 and reveals nothing /health does not), CORS preflights (`OPTIONS`: browsers send them without credentials, and
 * llama-server answers them without a key too), and routes the proxy registers under `/proxycache`, its own status
 * and admin API, which has its own access rule (ADMIN_TOKEN). A passed-through path under `/proxycache` matches
 * no such route and so needs a key. A verified credential is removed from the request: it belongs to the proxy, and
 * no route may forward it to a backend.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';

/** Whether a presented key is one of the configured keys. */
export type KeyMatcher = (presented: string) => boolean;

/**
 * Compares SHA-256 digests with `timingSafeEqual`: digests have one length, so neither a key's length nor how much
 * of it matched shows in the time taken. Every configured key is compared, hit or not.
 */
export function keyMatcher(keys: readonly string[]): KeyMatcher {
  const expected = keys.map(digest);
  return (presented) => {
    const d = digest(presented);
    let hit = false;
    for (const e of expected) hit = timingSafeEqual(d, e) || hit;
    return hit;
  };
}

/** The keys a request presents: the `Bearer` token of `Authorization` and the `x-api-key` value. */
export function presentedKeys(headers: FastifyRequest['headers']): string[] {
  const keys: string[] = [];
  const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(headers.authorization ?? '');
  if (bearer) keys.push(bearer[1]!);
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim() !== '') keys.push(apiKey.trim());
  return keys;
}

/** Requests that need no key (see the module comment). */
export function openWithoutKey(request: Pick<FastifyRequest, 'method' | 'routeOptions'>): boolean {
  const route = request.routeOptions.url ?? '';
  if (
    request.method === 'OPTIONS' ||
    route === '/health' ||
    route === '/proxycache' ||
    route.startsWith('/proxycache/')
  )
    return true;
  return request.method === 'HEAD' && route === '/';
}

/** Add the key check to `app` when API_KEYS is set (null: every request is let through, as before). */
export function registerClientKeys(app: FastifyInstance, keys: readonly string[] | null): void {
  if (keys === null) return;
  const matches = keyMatcher(keys);
  // onRequest: before the body is read, so a client without a key costs no body parsing.
  app.addHook('onRequest', async (request) => {
    if (openWithoutKey(request)) return;
    const presented = presentedKeys(request.headers);
    if (presented.length === 0) {
      throw new ProxyError(
        401,
        'missing_api_key',
        'an API key is required: send "Authorization: Bearer <key>" or "x-api-key: <key>"',
      );
    }
    if (!presented.some(matches)) throw new ProxyError(401, 'invalid_api_key', 'invalid API key');
    // request.headers is the raw message's header object (a view of it when Fastify added headers).
    delete request.raw.headers.authorization;
    delete request.raw.headers['x-api-key'];
  });
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
