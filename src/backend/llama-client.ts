/**
 * One HTTP client per backend (a keep-alive undici Pool): chat completions (JSON or SSE), slot actions, and the
 * read-only endpoints the proxy needs. It knows which kind of server it talks to and builds paths accordingly. Every
 * call goes through one `send`, which adds BACKEND_API_KEY.
 */
import { Pool, errors as undiciErrors } from 'undici';
import type { Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import { backendTimeout, backendUnreachable, ProxyError } from '../errors.js';
import { withBackendKey } from './backend-auth.js';
import { classifyBackend, modelScopedPath, slotActionRequest } from './backend-kind.js';
import type { BackendKind, SlotAction } from './backend-kind.js';

export interface LlamaClientOptions {
  url: string;
  /** A fixed kind, or undefined to probe (`auto`). */
  kind?: BackendKind;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** BACKEND_API_KEY: sent on every call (see backend-auth.ts); null = none. */
  apiKey: string | null;
}

/** One call to the backend; header names in lower case. */
type BackendRequest = Omit<Dispatcher.RequestOptions, 'headers'> & { headers?: Record<string, string> };

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export interface SlotActionResult {
  ok: boolean;
  status: number;
  /** Parsed JSON answer (`n_saved`, `n_restored`, `error`…), or the raw text when it was not JSON. */
  body: Record<string, unknown>;
}

export interface LlamaClient {
  readonly url: string;
  /** The kind in force: the configured one, the probed one, or undefined before a successful probe. */
  readonly kind: BackendKind | undefined;
  /** Probe the backend (once at a time) and remember what it is. Throws a 502 ProxyError when unreachable. */
  detectKind(): Promise<BackendKind>;
  /** POST a serialised chat completion request (`stream`: it asks for SSE). The caller owns the returned body. */
  chat(payload: Buffer | string, opts: { signal: AbortSignal; stream: boolean }): Promise<UpstreamResponse>;
  /** POST a serialised generation request to `path` (chat, completion, infill, responses; `stream`: SSE). */
  generate(
    path: string,
    payload: Buffer | string,
    opts: { signal: AbortSignal; stream: boolean },
  ): Promise<UpstreamResponse>;
  /** A slot action for `model`'s slot `slotId`; retried once when the server had closed the pooled connection. */
  slotAction(model: string, slotId: number, action: SlotAction, filename?: string): Promise<SlotActionResult>;
  /** GET a path and parse JSON; undefined on a non-2xx answer. */
  getJson(path: string, timeoutMs?: number): Promise<unknown>;
  /** Forward any request unchanged (used for passthrough routes). */
  forward(req: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: Buffer;
    signal: AbortSignal;
  }): Promise<UpstreamResponse>;
  /** Whether `model` is loaded now, without loading it. Plain llama-server: always true. */
  isModelLoaded(model: string): Promise<boolean>;
  /** The models loaded now (llama-swap `/running`, router `/models`); undefined on a plain llama-server. */
  loadedModels(): Promise<Set<string> | undefined>;
  /** Router mode: how many models it runs at once (`--models-max`, its `/props` `max_instances`); else undefined. */
  modelsAtOnce(): Promise<number | undefined>;
  /** Router mode: load `model` and wait until it is ready (only for a request that needs it anyway). */
  loadModel(model: string, timeoutMs: number): Promise<boolean>;
  /**
   * What identifies the model file behind `model` (path, size, type, context from `/props` and `/v1/models`), so
   * a cache is only restored into the model that wrote it. Behind llama-swap this loads the model: ask only when
   * a request for it is being served anyway.
   */
  fingerprint(model: string): Promise<string | undefined>;
  /** The body of `GET /slots` for `model`'s server, or undefined when it did not answer in `timeoutMs` or failed. */
  slots(model: string, timeoutMs: number): Promise<unknown>;
  /** `total_slots` from `/props` for `model` (only asked when the model is loaded), or undefined. */
  totalSlots(model: string): Promise<number | undefined>;
  /** Wait for the requests in flight, then close the connections. */
  close(): Promise<void>;
  /** Abort the requests in flight (they reject) and close the connections: the end of a shutdown's deadline. */
  destroy(): Promise<void>;
}

/** One generation call: the path and the JSON body bytes (with the pin spliced in, see json-body.upstreamBody). */
export interface BackendCall {
  path: string;
  body: Buffer | string;
}

/** `id_slot` for a task the server places itself: the idle slot whose cache matches best, else the one idle longest. */
export const ANY_SLOT = -1;

const RETRYABLE_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);

/** Create the client for one backend. */
/** The fields of GET /props and of a GET /v1/models entry that identify a model file (see fingerprint()). */
interface ServerProps {
  model_path?: unknown;
  model_ftype?: unknown;
  model_alias?: unknown;
  default_generation_settings?: { n_ctx?: unknown };
}
interface ModelEntry {
  id?: unknown;
  meta?: { n_ctx?: unknown; size?: unknown; n_params?: unknown };
}

export function createLlamaClient(opts: LlamaClientOptions): LlamaClient {
  const url = opts.url.replace(/\/+$/, '');
  const pool = new Pool(url, {
    connect: { timeout: opts.connectTimeoutMs },
    headersTimeout: opts.requestTimeoutMs,
    bodyTimeout: opts.requestTimeoutMs,
  });
  let kind: BackendKind | undefined = opts.kind;
  let probing: Promise<BackendKind> | undefined;

  /** Every call to the backend goes through here, so every one carries the backend's key. */
  async function send(options: BackendRequest): Promise<UpstreamResponse> {
    try {
      const res = await pool.request({
        ...options,
        headers: withBackendKey(options.headers, opts.apiKey),
        // The router closes the connection after every answer it relays from a model's server, and its GETs'
        // answers do not say so: a connection kept for the next request could close under it. Keep none.
        reset: options.reset || !keepsConnections(kind),
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (err) {
      // The backend is down: when it comes back it may be another kind (or restarted), so probe it again then.
      if (!opts.kind && isConnectFailure(err)) kind = undefined;
      throw mapNetworkError(url, err);
    }
  }

  async function getJson(path: string, timeoutMs = opts.connectTimeoutMs): Promise<unknown> {
    const res = await send({ method: 'GET', path, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const text = await readText(res.body);
    if (res.status < 200 || res.status >= 300) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  async function probe(): Promise<BackendKind> {
    if (opts.kind) return opts.kind;
    const running = await getJson('/running');
    const models = running === undefined ? await getJson('/models') : undefined;
    kind = classifyBackend({ running, models });
    return kind;
  }

  async function slotActionOnce(model: string, slotId: number, action: SlotAction, filename?: string) {
    const req = slotActionRequest(kind ?? 'llama-server', model, slotId, action, filename);
    const res = await send({
      method: 'POST',
      path: req.path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req.body),
    });
    const text = await readText(res.body);
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      body = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : { value: parsed };
    } catch {
      body = { text };
    }
    return { ok: res.status >= 200 && res.status < 300, status: res.status, body };
  }

  async function routerLoaded(): Promise<Set<string>> {
    const models = (await getJson('/models')) as
      { data?: Array<{ id?: string; status?: { value?: string } }> } | undefined;
    return new Set((models?.data ?? []).filter((m) => m.status?.value === 'loaded').map((m) => String(m.id)));
  }

  return {
    url,
    get kind() {
      return kind;
    },
    detectKind() {
      probing ??= probe().finally(() => {
        probing = undefined;
      });
      return probing;
    },
    chat(payload, opts) {
      return this.generate('/v1/chat/completions', payload, opts);
    },
    generate(path, payload, { signal, stream }) {
      return send({
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' },
        body: payload,
        signal,
        // llama-server closes the connection after every stream although it advertises keep-alive; never pool it.
        reset: stream,
      });
    },
    async slotAction(model, slotId, action, filename) {
      try {
        return await slotActionOnce(model, slotId, action, filename);
      } catch (err) {
        if (!isRetryable(err)) throw err;
        return slotActionOnce(model, slotId, action, filename);
      }
    },
    getJson,
    forward({ method, path, headers, body, signal }) {
      return send({ method: method as Dispatcher.HttpMethod, path, headers, body, signal });
    },
    async isModelLoaded(model) {
      const loaded = await this.loadedModels();
      return loaded === undefined || loaded.has(model);
    },
    async loadedModels() {
      const k = kind ?? 'llama-server';
      if (k === 'llama-server') return undefined;
      if (k === 'llama-swap') {
        const running = (await getJson('/running')) as
          { running?: Array<{ model?: string; state?: string }> } | undefined;
        return new Set((running?.running ?? []).filter((r) => r.state === 'ready').map((r) => String(r.model)));
      }
      return routerLoaded();
    },
    async modelsAtOnce() {
      if (kind !== 'router') return undefined;
      const max = ((await getJson('/props')) as { max_instances?: unknown } | undefined)?.max_instances;
      return typeof max === 'number' && Number.isInteger(max) && max > 0 ? max : undefined;
    },
    async loadModel(model, timeoutMs) {
      if (kind !== 'router') return true;
      if ((await routerLoaded()).has(model)) return true;
      const res = await send({
        method: 'POST',
        path: '/models/load',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model }),
      });
      await readText(res.body);
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if ((await routerLoaded()).has(model)) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    },
    async fingerprint(model) {
      const k = kind ?? 'llama-server';
      const props = (await getJson(modelScopedPath(k, model, '/props'))) as ServerProps | undefined;
      if (!props || typeof props !== 'object') return undefined;
      const models = (await getJson(k === 'llama-swap' ? modelScopedPath(k, model, '/v1/models') : '/v1/models')) as
        { data?: ModelEntry[] } | undefined;
      const entry =
        models?.data?.find((m) => m.id === model || m.id === props.model_alias) ??
        (k === 'llama-server' ? models?.data?.[0] : undefined);
      const fields = {
        path: props.model_path,
        ftype: props.model_ftype,
        n_ctx: props.default_generation_settings?.n_ctx ?? entry?.meta?.n_ctx,
        size: entry?.meta?.size,
        n_params: entry?.meta?.n_params,
      };
      if (fields.path === undefined && fields.size === undefined) return undefined;
      return Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([n, v]) => `${n}=${String(v)}`)
        .join(';');
    },
    slots(model, timeoutMs) {
      return getJson(modelScopedPath(kind ?? 'llama-server', model, '/slots'), timeoutMs).catch(() => undefined);
    },
    async totalSlots(model) {
      const props = (await getJson(modelScopedPath(kind ?? 'llama-server', model, '/props'))) as
        { total_slots?: unknown } | undefined;
      return typeof props?.total_slots === 'number' ? props.total_slots : undefined;
    },
    close() {
      return pool.close();
    },
    destroy() {
      return pool.destroy();
    },
  };
}

/** Whether a connection to this kind of backend can carry the next request (a router's cannot; unknown: no). */
function keepsConnections(kind: BackendKind | undefined): boolean {
  return kind === 'llama-server' || kind === 'llama-swap';
}

/** Read a whole body as text (bodies of slot actions and probes are small). */
export async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Nothing reached the backend: refused, or no connection within CONNECT_TIMEOUT. */
function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH';
}

function isRetryable(err: unknown): boolean {
  const cause = err instanceof ProxyError ? err.cause : err;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/** Map undici's failures to fixed statuses: timeouts 504, everything else on the network 502; aborts pass through. */
function mapNetworkError(url: string, err: unknown): unknown {
  if (err instanceof undiciErrors.RequestAbortedError || (err as Error)?.name === 'AbortError') return err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return backendTimeout(url, err);
  }
  return backendUnreachable(url, err);
}
