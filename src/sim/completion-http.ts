/**
 * `POST /completion` (llama-server's native API) and `POST /v1/completions` (OpenAI text completions), shaped like
 * the real server's answers (captured from the binary in test/integration/sim-endpoints.test.ts). Both honour
 * `id_slot`. A stream's headers go out with the first token; the native stream sends one object per token and a
 * final one with `stop: true` and `timings`, the OpenAI one ends with a chunk carrying `usage` and `timings`, then
 * `data: [DONE]`.
 */
import type { ChatOutcome } from './chat-engine.js';
import { parseCompletionRequest } from './completion-request.js';
import { parseInfillRequest } from './infill-request.js';
import { endSse, sendError, sendJson, startSse, writeSse, type Exchange } from './http-io.js';
import { BUILD_INFO, completionSettings } from './llama-shapes.js';
import type { ModelInstance } from './model-instance.js';
import { completionId, runTaskFor, timingsOf, usageOf } from './task-http.js';
import { Vocabulary } from './tokenizer.js';

/**
 * Handles `/completion` (`openai` false) or `/v1/completions` (`openai` true) on `inst`; `/infill` is a native
 * completion whose prompt is built from its fields (infill-request.ts).
 */
export async function handleCompletion(
  inst: ModelInstance,
  ex: Exchange,
  openai: boolean,
  infill = false,
): Promise<void> {
  const parsed = infill ? parseInfillRequest(ex.req.body, inst.vocab) : parseCompletionRequest(ex.req.body, inst.vocab);
  if (!parsed.ok) return sendError(ex, parsed.status, parsed.message, parsed.type);
  const { task, stream } = parsed;
  const head = { created: Math.floor(Date.now() / 1000), id: completionId() };
  // Key order as the server writes it: usage before the id, timings after it (on the last chunk only).
  const openaiChunk = (text: string, finish: string | null, o?: ChatOutcome): Record<string, unknown> => ({
    choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
    created: head.created,
    model: inst.name,
    system_fingerprint: BUILD_INFO,
    object: 'text_completion',
    ...(o ? { usage: usageOf(o) } : {}),
    id: head.id,
    ...(o ? { timings: timingsOf(o) } : {}),
  });
  let decoded = 0;
  let started = false;
  const start = (): void => {
    if (!started) startSse(ex);
    started = true;
  };
  const onToken = (piece: string): void => {
    decoded++;
    if (!stream) return;
    start();
    if (openai) writeSse(ex, openaiChunk(piece, null));
    else {
      const tokens = [inst.vocab.idOf(piece)];
      writeSse(ex, {
        index: 0,
        content: piece,
        tokens,
        stop: false,
        id_slot: -1,
        tokens_predicted: decoded,
        tokens_evaluated: task.prompt.length,
      });
    }
  };

  const outcome = await runTaskFor(inst, ex, task, onToken);
  if (!outcome) return;
  if (openai) {
    if (!stream) return sendJson(ex, 200, openaiChunk(outcome.predicted.join(''), outcome.finishReason, outcome));
    start();
    writeSse(ex, openaiChunk('', outcome.finishReason, outcome));
    writeSse(ex, '[DONE]');
    return endSse(ex);
  }
  const body = nativeFinal(
    inst,
    outcome,
    task.params,
    parsed.promptText,
    stream ? '' : outcome.predicted.join(''),
    infill,
  );
  if (!stream) return sendJson(ex, 200, body);
  start();
  writeSse(ex, body);
  endSse(ex);
}

/** The last object of a `/completion` answer (the whole answer without streaming); `rendered`: an infill's prompt, BOS inside. */
function nativeFinal(
  inst: ModelInstance,
  o: ChatOutcome,
  params: Record<string, unknown>,
  promptText: string,
  content: string,
  rendered: boolean,
): Record<string, unknown> {
  const nPrompt = o.cacheN + o.promptN;
  return {
    index: 0,
    content,
    tokens: [],
    id_slot: o.slot,
    stop: true,
    model: inst.name,
    tokens_predicted: o.predicted.length,
    tokens_evaluated: nPrompt,
    generation_settings: completionSettings(params),
    prompt: rendered ? promptText : `${Vocabulary.BOS.piece} ${promptText}`,
    has_new_line: o.predicted.some((p) => p.includes('\n')),
    truncated: false,
    stop_type: o.finishReason === 'length' ? 'limit' : 'eos',
    stopping_word: '',
    tokens_cached: nPrompt + Math.max(0, o.predicted.length - 1),
    timings: timingsOf(o),
  };
}
