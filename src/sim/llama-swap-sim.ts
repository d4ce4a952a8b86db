/**
 * llama-swap in front of several simulated llama-servers (behaviour and texts from llama-swap's
 * proxy/proxymanager.go):
 * - inference POSTs route by the body's `model`: missing → 400 `missing or invalid 'model' key`, unknown →
 *   400 `could not find suitable inference handler for X`; the model is started on demand, stopping the running
 *   one first (beyond `maxRunning`, after its requests in flight end);
 * - `/upstream/{model}/…` strips the prefix and forwards, starting the model if needed; unknown model → 400
 *   `model id required in path`; `/upstream/{model}` without a slash → 301 (GET) / 308 redirect;
 * - `GET /running`, `GET /unload` (→ `OK`), `POST /api/models/unload[/{model}]`, `GET /v1/models`, `GET /health`;
 * - only llama-swap's own GET endpoints route by `?model=`; there is no model-less `/slots` (404, empty body).
 * Errors are plain text, or `{"error": "…"}` when the client accepts JSON. Go marshals maps with sorted keys.
 */
import type { Exchange } from './http-io.js';
import { handleLlamaServer } from './llama-server-sim.js';
import type { ModelPool } from './model-pool.js';

const INFERENCE_PATHS = new Set([
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/completions',
  '/v1/messages',
  '/v1/messages/count_tokens',
  '/v1/embeddings',
  '/reranking',
  '/rerank',
  '/v1/rerank',
  '/v1/reranking',
  '/infill',
  '/completion',
]);
const GET_BY_QUERY_PATHS = new Set(['/v1/audio/voices', '/sdapi/v1/loras']);

function send(ex: Exchange, status: number, body: string, contentType: string): void {
  if (ex.res.headersSent || ex.res.destroyed) return;
  ex.res.statusCode = status;
  if (body !== '' || status !== 404) ex.res.setHeader('Content-Type', contentType);
  ex.res.setHeader('Content-Length', Buffer.byteLength(body));
  ex.res.end(body);
}

/** Sends a Go `c.JSON` answer. */
function sendGoJson(ex: Exchange, status: number, body: unknown): void {
  send(ex, status, JSON.stringify(body), 'application/json; charset=utf-8');
}

/** llama-swap's sendErrorResponse: JSON only when the client's Accept asks for it. */
function sendSwapError(ex: Exchange, status: number, message: string): void {
  if (String(ex.req.headers.accept ?? '').includes('application/json')) sendGoJson(ex, status, { error: message });
  else send(ex, status, message, 'text/plain; charset=utf-8');
}

/** llama-swap mode: routes requests to the pool's instances. */
export class LlamaSwapSim {
  private readonly created = Math.floor(Date.now() / 1000);

  /** @param pool the configured models (maxRunning 1 unless groups are modelled) */
  constructor(private readonly pool: ModelPool) {}

  /** Routes one request. */
  async handle(ex: Exchange): Promise<void> {
    const { method, path } = ex.req;
    if (path.startsWith('/upstream/')) return this.upstream(ex, path.slice('/upstream/'.length));
    if (method === 'POST' && INFERENCE_PATHS.has(path)) {
      let model = '';
      try {
        const body = JSON.parse(ex.req.body.toString('utf8')) as { model?: unknown };
        if (typeof body?.model === 'string' || typeof body?.model === 'number') model = String(body.model);
      } catch {
        // gjson finds no model in an unparsable body
      }
      if (model === '') return sendSwapError(ex, 400, "missing or invalid 'model' key");
      if (!this.pool.has(model))
        return sendSwapError(ex, 400, `could not find suitable inference handler for ${model}`);
      return this.forward(ex, model);
    }
    if (method === 'GET' && GET_BY_QUERY_PATHS.has(path)) {
      const model = ex.req.query.get('model') ?? '';
      if (model === '') return sendSwapError(ex, 400, "missing required 'model' query parameter");
      if (!this.pool.has(model)) return sendSwapError(ex, 400, `could not find suitable handler for ${model}`);
      return this.forward(ex, model);
    }
    if (method === 'GET' && path === '/v1/models') return sendGoJson(ex, 200, this.models());
    if (method === 'GET' && path === '/running') return sendGoJson(ex, 200, this.running());
    if (method === 'GET' && (path === '/health' || path === '/wol-health'))
      return send(ex, 200, 'OK', 'text/plain; charset=utf-8');
    if (method === 'GET' && path === '/unload') {
      this.pool.unloadAll();
      return send(ex, 200, 'OK', 'text/plain; charset=utf-8');
    }
    if (method === 'POST' && path === '/api/models/unload') {
      this.pool.unloadAll();
      return sendGoJson(ex, 200, { msg: 'ok' });
    }
    if (method === 'POST' && path.startsWith('/api/models/unload/')) {
      const model = decodeURIComponent(path.slice('/api/models/unload/'.length));
      if (!this.pool.has(model)) return sendSwapError(ex, 404, 'Model not found');
      this.pool.unload(model);
      return send(ex, 200, 'OK', 'text/plain; charset=utf-8');
    }
    send(ex, 404, '', 'text/plain');
  }

  private async upstream(ex: Exchange, rest: string): Promise<void> {
    // Model names may contain slashes: grow the name segment by segment until it names a model.
    const parts = rest.split('/');
    for (let i = 0; i < parts.length; i++) {
      const name = decodeURIComponent(parts.slice(0, i + 1).join('/'));
      if (!this.pool.has(name)) continue;
      const remaining = '/' + parts.slice(i + 1).join('/');
      if (i + 1 === parts.length) {
        const query = ex.req.query.toString();
        const target = `/upstream/${parts.slice(0, i + 1).join('/')}/${query ? '?' + query : ''}`;
        ex.res.setHeader('Location', target);
        return send(
          ex,
          ex.req.method === 'GET' || ex.req.method === 'HEAD' ? 301 : 308,
          '',
          'text/html; charset=utf-8',
        );
      }
      ex.req.path = remaining;
      return this.forward(ex, name);
    }
    sendSwapError(ex, 400, 'model id required in path');
  }

  private async forward(ex: Exchange, model: string): Promise<void> {
    let lease;
    try {
      lease = await this.pool.acquire(model);
    } catch (err) {
      return sendSwapError(ex, 500, `error proxying request: ${(err as Error).message}`);
    }
    try {
      await handleLlamaServer(lease.instance, ex);
    } finally {
      lease.release();
    }
  }

  private models(): Record<string, unknown> {
    const data = this.pool
      .ids()
      .sort()
      .map((id) => ({ created: this.created, id, object: 'model', owned_by: 'llama-swap' }));
    return { data, object: 'list' };
  }

  private running(): Record<string, unknown> {
    const running = this.pool
      .ids()
      .filter((id) => this.pool.status(id) === 'loaded')
      .map((id) => {
        const c = this.pool.config(id)!;
        const port = 5800 + this.pool.ids().indexOf(id);
        const cmd = `llama-server --port ${port} -m ${c.path}${c.slotSavePath ? ` --slot-save-path ${c.slotSavePath}` : ''}`;
        return { cmd, description: '', model: id, name: '', proxy: `http://127.0.0.1:${port}`, state: 'ready', ttl: 0 };
      });
    return { running };
  }
}
