/**
 * The HTTP routes of one llama-server process, and the llama-server mode of the simulator (one process behind
 * one port). llama-swap and the router call `handleLlamaServer` in-process for the instance a request goes to.
 */
import { refusedForKey } from './api-key.js';
import { handleChat } from './chat-http.js';
import { handleCompletion } from './completion-http.js';
import { sendError, sendJson, sendNotFound, type Exchange } from './http-io.js';
import { handleCountTokens, handleMessages } from './messages-http.js';
import { handleResponses } from './responses-http.js';
import { modelsBody, propsBody, slotsBody } from './llama-shapes.js';
import type { ModelInstance } from './model-instance.js';
import { handleSlotAction } from './slot-actions-http.js';
import { handleTextEndpoint } from './text-endpoints.js';

const SLOT_ACTION_PATH = /^\/slots\/([^/]*)$/;

/** Serves one request on `inst` as llama-server would (503 for everything while the model loads). */
export async function handleLlamaServer(inst: ModelInstance, ex: Exchange): Promise<void> {
  const { method, path } = ex.req;
  if (inst.state === 'stopped') {
    ex.res.destroy(); // the process is gone: the connection just breaks
    return;
  }
  if (inst.state === 'loading') return sendError(ex, 503, 'Loading model', 'unavailable_error');
  if (refusedForKey(inst.config.apiKeys, ex.req)) return sendError(ex, 401, 'Invalid API Key', 'authentication_error');
  if (method === 'GET') {
    switch (path) {
      case '/health':
      case '/v1/health':
        return sendJson(ex, 200, { status: 'ok' });
      case '/models':
      case '/v1/models':
        return sendJson(ex, 200, modelsBody(inst));
      case '/props':
        return sendJson(ex, 200, propsBody(inst));
      case '/slots':
        return getSlots(inst, ex);
      case '/metrics':
        // The simulator has no `--metrics`: the real server's answer without it.
        return sendError(ex, 501, 'This server does not support metrics endpoint. Start it with `--metrics`');
      default:
        return sendNotFound(ex);
    }
  }
  if (method === 'POST') {
    if (path === '/v1/chat/completions' || path === '/chat/completions') return handleChat(inst, ex);
    if (path === '/v1/messages') return handleMessages(inst, ex);
    if (path === '/v1/messages/count_tokens') return handleCountTokens(ex);
    if (path === '/completion' || path === '/completions') return handleCompletion(inst, ex, false);
    if (path === '/v1/completions') return handleCompletion(inst, ex, true);
    if (path === '/infill') return handleCompletion(inst, ex, false, true);
    if (path === '/v1/responses' || path === '/responses') return handleResponses(inst, ex);
    const m = SLOT_ACTION_PATH.exec(path);
    if (m) return handleSlotAction(inst, ex, decodeURIComponent(m[1]!));
    if (handleTextEndpoint(inst, ex, path)) return;
  }
  sendNotFound(ex);
}

function getSlots(inst: ModelInstance, ex: Exchange): void {
  if (inst.config.noSlots) {
    return sendError(
      ex,
      501,
      'This server does not support slots endpoint. Start it with `--slots`',
      'not_supported_error',
    );
  }
  const failOnNoSlot = ex.req.query.get('fail_on_no_slot');
  if (failOnNoSlot && failOnNoSlot !== '0' && inst.slots.every((s) => !s.idle)) {
    return sendError(ex, 503, 'no slot available', 'unavailable_error');
  }
  sendJson(ex, 200, slotsBody(inst));
}

/** llama-server mode: one model instance that `restart` replaces (same port, files kept, state lost). */
export class LlamaServerSim {
  private current: ModelInstance;

  /** @param create builds a fresh (loading) instance; called now and on every restart */
  constructor(private readonly create: () => ModelInstance) {
    this.current = create();
  }

  /** The running instance. */
  get instance(): ModelInstance {
    return this.current;
  }

  /** Loads the model (recording a `load` event); resolves when `/health` answers 200. */
  async start(): Promise<void> {
    const inst = this.current;
    await inst.load();
    if (inst.state === 'ready') inst.recorder.record({ type: 'load', model: inst.config.id });
  }

  /** Routes a request to the running instance. */
  handle(ex: Exchange): Promise<void> {
    return handleLlamaServer(this.current, ex);
  }

  /** Kills the process and starts a new one: slots and RAM cache are lost, save files stay. */
  async restart(): Promise<void> {
    this.current.kill();
    this.current.recorder.record({ type: 'unload', model: this.current.config.id });
    this.current = this.create();
    await this.start();
  }

  /** Stops the instance for good. */
  stop(): void {
    this.current.kill();
  }
}
