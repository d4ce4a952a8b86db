/**
 * `GET /metrics`: the proxy's own Prometheus metrics (src/observe/metrics.ts). It replaces the passthrough of the
 * backend's `/metrics` on that path; each backend's own metrics stay reachable, passed through unchanged, at
 * `GET /metrics/backends/{index}` (index in the BACKENDS list, 0 for LLAMA_URL). Also counts every HTTP request
 * the proxy answers, by route pattern, API and status.
 */
import type { FastifyInstance } from 'fastify';
import { ProxyError } from '../errors.js';
import type { LlamaClient } from '../backend/llama-client.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import { CLIENT_CLOSED_REQUEST } from '../generation/forward.js';
import { responseHeadersForClient } from './upstream-headers.js';

export function registerMetricsRoutes(
  app: FastifyInstance,
  metrics: ProxyMetrics,
  clients: readonly LlamaClient[],
): void {
  app.addHook('onRequest', (request, reply, done) => {
    // On the socket's close, not onResponse: streamed chat answers are hijacked and never reach onResponse.
    reply.raw.once('close', () => {
      const route = request.routeOptions.url ?? 'unmatched';
      const api = (request.routeOptions.config as ApiLabelConfig | undefined)?.api ?? apiOf(route);
      metrics.noteHttp(route, api, reply.raw.headersSent ? reply.raw.statusCode : CLIENT_CLOSED_REQUEST);
    });
    done();
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store').send(text);
  });

  app.get<{ Params: { index: string } }>('/metrics/backends/:index', async (request, reply) => {
    const index = /^\d+$/.test(request.params.index) ? Number(request.params.index) : NaN;
    const client = clients[index];
    if (!client)
      throw new ProxyError(
        404,
        'not_found',
        `no backend ${request.params.index}: backends are numbered 0 to ${clients.length - 1}`,
      );
    const abort = new AbortController();
    reply.raw.once('close', () => abort.abort());
    const res = await client.forward({ method: 'GET', path: '/metrics', headers: {}, signal: abort.signal });
    return reply.code(res.status).headers(responseHeadersForClient(res.headers)).send(res.body);
  });
}

/** A route's config naming its API for the metrics' label: the generation routes name their adapter's. */
export interface ApiLabelConfig {
  api?: string;
}

/** Which API a route that names none belongs to: a bounded label. */
function apiOf(route: string): string {
  if (route === '/v1/models' || route === '/models') return 'models';
  if (route === '/health') return 'health';
  if (route.startsWith('/metrics')) return 'metrics';
  if (route.startsWith('/proxycache')) return 'proxycache';
  if (route === '/*') return 'passthrough';
  return 'other';
}
