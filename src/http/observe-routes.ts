/**
 * The read-only status API under `/proxycache/` (JSON): `status`, `requests`, `history`, `entries`. Every path
 * under `/proxycache/` is the proxy's own (never passed through to a backend) and passes the access check first.
 */
import type { FastifyInstance } from 'fastify';
import { badRequest, ProxyError } from '../errors.js';
import { BUCKET_SECONDS, HISTORY_MINUTES } from '../observe/minute-history.js';
import type { Observer } from '../observe/observer.js';
import { RECENT_REQUESTS } from '../observe/observer.js';
import type { AccessCheck } from './access.js';

export interface ObserveRouteDeps {
  access: AccessCheck;
  observer: Pick<Observer, 'recent' | 'historyPoints'>;
  /** The body of `GET /proxycache/status` (probes the backends at most every few seconds). */
  status: () => Promise<Record<string, unknown>>;
  /** The body of `GET /proxycache/entries`. */
  entries: () => Record<string, unknown>;
}

const DEFAULT_REQUESTS = 50;
const DEFAULT_HISTORY_MINUTES = 60;

/** Register the routes in their own scope, with the access check on every one of them. */
export function registerObserveRoutes(app: FastifyInstance, deps: ObserveRouteDeps): void {
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => deps.access(request));
    scope.get('/proxycache/status', async (_request, reply) => noStore(reply).send(await deps.status()));
    scope.get('/proxycache/requests', async (request, reply) => {
      const limit = intParam(request.query, 'limit', DEFAULT_REQUESTS, RECENT_REQUESTS);
      return noStore(reply).send({ requests: deps.observer.recent(limit) });
    });
    scope.get('/proxycache/history', async (request, reply) => {
      const minutes = intParam(request.query, 'minutes', DEFAULT_HISTORY_MINUTES, HISTORY_MINUTES);
      return noStore(reply).send({ bucket_s: BUCKET_SECONDS, points: deps.observer.historyPoints(minutes) });
    });
    scope.get('/proxycache/entries', async (_request, reply) => noStore(reply).send(deps.entries()));
    // The proxy's own namespace: an unknown path here is a 404, not something for the backend.
    scope.all('/proxycache/*', async (request) => {
      throw new ProxyError(404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`);
    });
  });
}

function noStore<R extends { header(name: string, value: string): R }>(reply: R): R {
  return reply.header('cache-control', 'no-store');
}

/** An optional integer query parameter between 1 and `max`. */
function intParam(query: unknown, name: string, fallback: number, max: number): number {
  const raw = (query as Record<string, unknown> | undefined)?.[name];
  if (raw === undefined || raw === '') return fallback;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw badRequest(`${name} must be an integer between 1 and ${max}`, name);
  return n;
}
