/**
 * Which backend a passthrough request goes to: the one serving the model it names (`model` in a JSON body,
 * `?model=`, or llama-swap's `/upstream/{model}/…`), not always the first. The decision is pure (`chooseBackend`);
 * `createModelRouter` feeds it each backend's `/v1/models` ids, kept for a few seconds.
 */
import { ProxyError } from '../errors.js';
import type { BackendKind } from '../backend/backend-kind.js';
import type { LlamaClient } from '../backend/llama-client.js';

/** What one backend serves, as far as routing is concerned. */
export interface BackendModels {
  kind: BackendKind | undefined;
  /** Model ids (and aliases) from its `/v1/models`; undefined when it did not answer. */
  ids: ReadonlySet<string> | undefined;
}

/**
 * The backend for `model`: the first that lists it; else the first plain llama-server (it answers to any model
 * name) or backend whose list is unknown (it did not answer: let it answer this request, or fail with a 502);
 * else a 404 `model_not_found` listing the models there are. No model named: the first backend.
 */
function chooseBackend(model: string | undefined, backends: readonly BackendModels[]): number {
  if (model === undefined) return 0;
  const listing = backends.findIndex((b) => b.ids?.has(model));
  if (listing >= 0) return listing;
  const open = backends.findIndex((b) => b.kind === 'llama-server' || b.ids === undefined);
  if (open >= 0) return open;
  const known = [...new Set(backends.flatMap((b) => [...(b.ids ?? [])]))].sort();
  throw new ProxyError(
    404,
    'model_not_found',
    `model '${model}' is not served by any backend; available models: ${known.join(', ') || '(none answered)'}`,
    { param: 'model' },
  );
}

/** The model a passthrough request names, if any. */
function requestedModel(
  target: string,
  body: Buffer | undefined,
  contentType: string | undefined,
  knownIds: ReadonlySet<string>,
): string | undefined {
  const url = new URL(target, 'http://x');
  const upstream = upstreamModel(url.pathname, knownIds);
  if (upstream !== undefined) return upstream;
  const query = url.searchParams.get('model');
  if (query) return query;
  if (!body || body.length === 0 || !/json/i.test(contentType ?? '')) return undefined;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const model = (parsed as { model?: unknown } | null)?.model;
    return typeof model === 'string' && model !== '' ? model : undefined;
  } catch {
    return undefined; // the backend judges a bad body
  }
}

/**
 * llama-swap's `/upstream/{model}/…`: model names may contain `/`, so the longest run of segments that is a known
 * model wins, else the first segment.
 */
function upstreamModel(path: string, knownIds: ReadonlySet<string>): string | undefined {
  const segments = path.split('/').filter((s) => s !== '');
  if (segments[0] !== 'upstream' || segments.length < 2) return undefined;
  const names = segments.slice(1).map((s) => decodeURIComponent(s));
  for (let n = names.length; n > 1; n--) {
    const candidate = names.slice(0, n).join('/');
    if (knownIds.has(candidate)) return candidate;
  }
  return names[0];
}

const LIST_TTL_MS = 5000;

/** Each backend's model list, fetched when older than a few seconds (shared by concurrent requests). */
export function createModelRouter(clients: readonly LlamaClient[], timeoutMs: number) {
  let cached: { at: number; lists: Promise<BackendModels[]> } | undefined;

  function lists(): Promise<BackendModels[]> {
    if (cached && performance.now() - cached.at < LIST_TTL_MS) return cached.lists;
    const fresh = Promise.all(
      clients.map(async (client) => ({ kind: client.kind, ids: await modelIds(client, timeoutMs) })),
    );
    cached = { at: performance.now(), lists: fresh };
    return fresh;
  }

  return {
    /** The backend index for a passthrough request (a 404 ProxyError for a model no backend serves). */
    async backendFor(target: string, body: Buffer | undefined, contentType: string | undefined): Promise<number> {
      if (clients.length === 1 && clients[0]!.kind === 'llama-server') return 0;
      const known = await lists();
      const ids = new Set(known.flatMap((b) => [...(b.ids ?? [])]));
      return chooseBackend(requestedModel(target, body, contentType, ids), known);
    },
  };
}

async function modelIds(client: LlamaClient, timeoutMs: number): Promise<Set<string> | undefined> {
  const list = (await client.getJson('/v1/models', timeoutMs).catch(() => undefined)) as
    { data?: Array<{ id?: unknown; aliases?: unknown }> } | undefined;
  if (!list || !Array.isArray(list.data)) return undefined;
  const ids = new Set<string>();
  for (const m of list.data) {
    if (typeof m.id === 'string') ids.add(m.id);
    if (Array.isArray(m.aliases)) for (const a of m.aliases) if (typeof a === 'string') ids.add(a);
  }
  return ids;
}
