/**
 * GET /health: the proxy's own health with each backend's reachability. 200 while at least one backend answers
 * (status "ok", or "degraded" when some do not), 503 when none does, or when the proxy itself keeps failing
 * requests (status "failing", see proxy-health.ts).
 */
import type { FastifyInstance } from 'fastify';
import { describeCause } from '../errors.js';
import type { ProxyContext } from './context.js';
import type { ProxyHealth } from './proxy-health.js';

const HEALTH_PROBE_TIMEOUT_MS = 2000;

export function registerHealthRoute(app: FastifyInstance, ctx: ProxyContext, health: ProxyHealth): void {
  app.get('/health', async (_request, reply) => {
    const backends = await Promise.all(ctx.clients.map(async (client) => {
      const started = performance.now();
      try {
        const res = await client.forward({ method: 'GET', path: '/health', headers: {}, signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
        res.body.resume();
        return { url: client.url, kind: client.kind ?? 'unknown', reachable: true, status: res.status, latency_ms: Math.round(performance.now() - started) };
      } catch (err) {
        return { url: client.url, kind: client.kind ?? 'unknown', reachable: false, error: describeCause(err) };
      }
    }));
    const reachable = backends.filter((b) => b.reachable).length;
    const slots = ctx.pool.all();
    const proxy = health.report();
    const backendStatus = reachable === backends.length ? 'ok' : reachable > 0 ? 'degraded' : 'unavailable';
    const body = {
      status: proxy.status === 'failing' ? 'failing' : backendStatus,
      proxy,
      backends,
      slots: { known: slots.length, busy: slots.filter((s) => s.busy).length },
      cache_entries: ctx.index.size,
    };
    return reply.code(reachable > 0 && proxy.status === 'ok' ? 200 : 503).send(body);
  });
}
