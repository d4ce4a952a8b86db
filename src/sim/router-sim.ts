/**
 * llama-server router mode (`--models-dir` / `--models-preset`, behaviour from tools/server/server-models.cpp):
 * POSTs route by the body's `model`, GETs by `?model=`; missing → 400 `model name is missing from the request`,
 * unknown → 400 `model 'X' not found`; a model that is not running is loaded first (autoload) unless the query
 * says `autoload=false` (→ 400 `model is not loaded`). `GET /models` lists every model with `status.value`;
 * `POST /models/load` / `/models/unload` take `{"model"}`; beyond `modelsMax` the least recently used model is
 * unloaded. A POST body that does not parse is a 500 with nlohmann's text, as for the child's own handlers.
 * The connection is closed after every answer relayed from a model's server (its own answers keep it open).
 */
import { isObject, parseJsonBody, sendError, sendJson, sendNotFound, type Exchange } from './http-io.js';
import { BUILD_INFO, modelDataEntry } from './llama-shapes.js';
import { handleLlamaServer } from './llama-server-sim.js';
import type { ModelPool } from './model-pool.js';

const PROXIED_GET = new Set(['/slots', '/props', '/metrics', '/lora-adapters']);
const PROXIED_POST =
  /^\/(v1\/chat\/completions(\/input_tokens)?|chat\/completions|v1\/completions|completions?|infill|tokenize|detokenize|apply-template|embeddings?|v1\/embeddings|rerank|reranking|v1\/rerank|v1\/reranking|v1\/responses|v1\/messages(\/count_tokens)?|lora-adapters|slots\/[^/]*)$/;

/** Router mode: one front process that spawns a child llama-server per model. */
export class RouterSim {
  /**
   * @param pool the models of `--models-dir` (maxRunning = `--models-max`; a model stopped to make room finishes
   *   its requests in flight first, an explicit unload stops it at once)
   * @param modelsMax reported in the router's own `/props`
   */
  constructor(
    private readonly pool: ModelPool,
    private readonly modelsMax: number,
  ) {}

  /** Routes one request. */
  async handle(ex: Exchange): Promise<void> {
    const { method, path } = ex.req;
    if (method === 'GET') {
      if (path === '/health' || path === '/v1/health') return sendJson(ex, 200, { status: 'ok' });
      if (path === '/models' || path === '/v1/models') return sendJson(ex, 200, this.models());
      if (path === '/props' && !ex.req.query.get('model')) return sendJson(ex, 200, this.routerProps());
      if (PROXIED_GET.has(path)) return this.forward(ex, ex.req.query.get('model') ?? '', false);
      return sendNotFound(ex);
    }
    if (method !== 'POST') return sendNotFound(ex);
    if (path === '/models/load' || path === '/models/unload') return this.loadOrUnload(ex, path === '/models/load');
    if (!PROXIED_POST.test(path)) return sendNotFound(ex);
    const parsed = parseJsonBody(ex.req.body);
    if (!parsed.ok) return sendError(ex, 500, parsed.message, 'server_error');
    const model = isObject(parsed.value) && typeof parsed.value.model === 'string' ? parsed.value.model : '';
    return this.forward(ex, model, true);
  }

  private async forward(ex: Exchange, model: string, isPost: boolean): Promise<void> {
    if (model === '') return sendError(ex, 400, 'model name is missing from the request');
    if (!this.pool.has(model)) return sendError(ex, 400, `model '${model}' not found`);
    const autoload = ex.req.query.get('autoload');
    if (autoload !== null && autoload !== 'true' && autoload !== '1' && this.pool.status(model) !== 'loaded') {
      return sendError(ex, 400, 'model is not loaded');
    }
    let lease;
    try {
      // The router refreshes a model's last use on POST requests only.
      lease = await this.pool.acquire(model, isPost);
    } catch (err) {
      return sendError(ex, 500, (err as Error).message, 'server_error');
    }
    try {
      ex.closeAfterAnswer();
      await handleLlamaServer(lease.instance, ex);
    } finally {
      lease.release();
    }
  }

  private loadOrUnload(ex: Exchange, load: boolean): void {
    const parsed = parseJsonBody(ex.req.body);
    if (!parsed.ok) return sendError(ex, 500, parsed.message, 'server_error');
    const model = isObject(parsed.value) && typeof parsed.value.model === 'string' ? parsed.value.model : '';
    // The binary answers an unknown model's load with its plain 404 body (its source says "model is not found").
    if (!this.pool.has(model)) return load ? sendNotFound(ex) : sendError(ex, 400, 'model is not found');
    const running = this.pool.status(model) !== 'unloaded';
    if (load) {
      if (running) return sendError(ex, 400, 'model is already running');
      // The real router answers as soon as the child is spawned; status is `loading` until it is ready.
      this.pool.load(model).catch(() => undefined);
    } else {
      if (!running) return sendError(ex, 400, 'model is not running');
      this.pool.unload(model);
    }
    sendJson(ex, 200, { success: true });
  }

  private models(): Record<string, unknown> {
    const created = Math.floor(Date.now() / 1000);
    const data = this.pool.ids().map((id, i) => {
      const c = this.pool.config(id)!;
      const args = [
        'llama-server',
        '--host',
        '127.0.0.1',
        '--port',
        String(39000 + i),
        '--alias',
        id,
        '--model',
        c.path,
        '--ctx-size',
        String(c.nCtx * c.nSlots),
        '--parallel',
        String(c.nSlots),
      ];
      const entry: Record<string, unknown> = {
        id,
        aliases: [],
        tags: [],
        object: 'model',
        owned_by: 'llamacpp',
        created,
        status: { value: this.pool.status(id), args },
      };
      const inst = this.pool.instance(id);
      if (inst && inst.state === 'ready') entry.meta = modelDataEntry(inst, created).meta;
      return entry;
    });
    return { data, object: 'list' };
  }

  private routerProps(): Record<string, unknown> {
    return {
      role: 'router',
      max_instances: this.modelsMax,
      models_autoload: true,
      model_alias: 'llama-server',
      model_path: 'none',
      default_generation_settings: { params: null, n_ctx: 0 },
      ui_settings: {},
      build_info: BUILD_INFO,
      cors_proxy_enabled: false,
    };
  }
}
