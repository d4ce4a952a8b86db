/**
 * GET /v1/models (and /models): the backend's own list, passed through. With several backends the lists are merged
 * by model id, first backend first, so a client sees every model it can ask for.
 */
import type { FastifyInstance } from 'fastify';
import { readText } from '../backend/llama-client.js';
import { ProxyError } from '../errors.js';
import type { LlamaClient } from '../backend/llama-client.js';

export function registerModelsRoute(app: FastifyInstance, clients: readonly LlamaClient[], timeoutMs: number): void {
  for (const path of ['/v1/models', '/models']) {
    app.get(path, async (_request, reply) => {
      const abort = new AbortController();
      if (clients.length === 1) {
        const res = await clients[0]!.forward({ method: 'GET', path, headers: {}, signal: abort.signal });
        const type = String(res.headers['content-type'] ?? 'application/json; charset=utf-8');
        return reply
          .code(res.status)
          .header('content-type', type)
          .send(await readText(res.body));
      }
      return mergedModels(clients, path, timeoutMs);
    });
  }
}

async function mergedModels(
  clients: readonly LlamaClient[],
  path: string,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const lists = await Promise.all(clients.map((c) => c.getJson(path, timeoutMs).catch(() => undefined)));
  const answered = lists.filter((l): l is { data?: unknown[] } => typeof l === 'object' && l !== null);
  if (answered.length === 0) throw new ProxyError(502, 'backend_unreachable', 'no backend answered /v1/models');
  const seen = new Set<string>();
  const data: unknown[] = [];
  for (const list of answered) {
    for (const model of Array.isArray(list.data) ? list.data : []) {
      const id = (model as { id?: unknown }).id;
      if (typeof id === 'string' && seen.has(id)) continue;
      if (typeof id === 'string') seen.add(id);
      data.push(model);
    }
  }
  return { object: 'list', data };
}
