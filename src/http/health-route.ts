/**
 * GET /health: the proxy's own health and each backend's state, asked from the backend's own `/health`.
 * A backend is `ok` (2xx), `loading` (503: llama-server answers `Loading model` until its model is ready), `error`
 * (any other status) or `unreachable`. The proxy can serve while at least one backend is ok: 200 with status "ok"
 * (all are) or "degraded" (some are not). Otherwise 503 with status "loading" (one is on its way) or "unavailable";
 * and 503 "failing" whenever the proxy itself keeps failing requests (see proxy-health.ts).
 *
 * HEAD /: 200 with no body, Claude Code's first request, to see that the server is there (llama-server answers it
 * with 404; an empty 200 is what Anthropic's API gives).
 */
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import type { LlamaClient } from '../backend/llama-client.js';
import { describeCause } from '../errors.js';
import type { SlotState } from '../slots/slot-state.js';
import type { ProxyHealth } from './proxy-health.js';

const HEALTH_PROBE_TIMEOUT_MS = 2000;

export type BackendState = 'ok' | 'loading' | 'error' | 'unreachable';
export type HealthStatus = 'ok' | 'degraded' | 'loading' | 'unavailable' | 'failing';

/** The overall status and HTTP status from the backends' states and whether the proxy itself keeps failing. */
export function summariseHealth(
  states: readonly BackendState[],
  proxyFailing = false,
): { status: HealthStatus; httpStatus: 200 | 503 } {
  if (proxyFailing) return { status: 'failing', httpStatus: 503 };
  const ok = states.filter((s) => s === 'ok').length;
  if (ok > 0) return { status: ok === states.length ? 'ok' : 'degraded', httpStatus: 200 };
  return { status: states.includes('loading') ? 'loading' : 'unavailable', httpStatus: 503 };
}

export interface HealthRouteDeps {
  clients: readonly LlamaClient[];
  slots: () => readonly SlotState[];
  entryCount: () => number;
  /** The proxy's own failures. */
  health: ProxyHealth;
}

export function registerHealthRoute(app: FastifyInstance, deps: HealthRouteDeps): void {
  const { health } = deps;
  app.get('/health', async (_request, reply) => {
    const backends = await Promise.all(deps.clients.map(probeBackend));
    const proxy = health.report();
    const { status, httpStatus } = summariseHealth(
      backends.map((b) => b.state),
      proxy.status === 'failing',
    );
    const slots = deps.slots();
    const body = {
      status,
      proxy,
      backends,
      slots: { known: slots.length, busy: slots.filter((s) => s.busy).length },
      cache_entries: deps.entryCount(),
    };
    return reply.code(httpStatus).send(body);
  });
}

async function probeBackend(client: LlamaClient) {
  const started = performance.now();
  const base = { url: client.url, kind: client.kind ?? 'unknown' };
  try {
    const res = await client.forward({
      method: 'GET',
      path: '/health',
      headers: {},
      signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS),
    });
    const text = await readCapped(res.body);
    const state: BackendState = res.status >= 200 && res.status < 300 ? 'ok' : res.status === 503 ? 'loading' : 'error';
    return {
      ...base,
      reachable: true,
      state,
      status: res.status,
      ...(state !== 'ok' && { detail: errorMessage(text) }),
      latency_ms: Math.round(performance.now() - started),
    };
  } catch (err) {
    return { ...base, reachable: false, state: 'unreachable' as const, error: describeCause(err) };
  }
}

/** llama-server's `{"error": {"message"}}`, else the text itself (shortened). */
function errorMessage(text: string): string {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200);
}

/** The first few kB of a body (a health answer is tiny; a misbehaving one must not be buffered whole). */
async function readCapped(body: Readable, limit = 4096): Promise<string> {
  let text = '';
  for await (const chunk of body) {
    text += chunk.toString();
    if (text.length >= limit) break;
  }
  return text.slice(0, limit);
}

/** Claude Code's connectivity probe (see the module comment). Open without a key, like /health (client-keys.ts). */
export function registerRootProbe(app: FastifyInstance): void {
  app.head('/', async (_request, reply) => reply.code(200).send());
}
