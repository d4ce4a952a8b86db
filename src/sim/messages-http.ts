/**
 * `POST /v1/messages` (Anthropic Messages API) shaped like the real llama-server's answers (captured from the
 * binary in test/integration/sim-endpoints.test.ts): a `message` object with `usage` (`cache_read_input_tokens` =
 * cache_n, `input_tokens` = prompt_n) and no `timings`; streamed, the named events message_start,
 * content_block_start, one content_block_delta per token, content_block_stop, message_delta, message_stop (no
 * `[DONE]`), the first of them with the first token (after the prefill).
 */
import type { ChatOutcome } from './chat-engine.js';
import { endSse, sendError, sendJson, startSse, writeSseEvent, type Exchange } from './http-io.js';
import { parseMessagesRequest } from './messages-request.js';
import type { ModelInstance } from './model-instance.js';
import { completionId, runTaskFor } from './task-http.js';

const stopReason = (o: ChatOutcome): string => (o.finishReason === 'length' ? 'max_tokens' : 'end_turn');

/** Handles one Anthropic messages request on `inst` (the slot is chosen as if no `id_slot` was sent). */
export async function handleMessages(inst: ModelInstance, ex: Exchange): Promise<void> {
  const parsed = parseMessagesRequest(ex.req.body);
  if (!parsed.ok) return sendError(ex, parsed.status, parsed.message);
  const { task, stream } = parsed;
  const id = completionId();
  const message = (
    content: unknown[],
    reason: string | null,
    usage: Record<string, number>,
  ): Record<string, unknown> => ({
    id,
    type: 'message',
    role: 'assistant',
    content,
    model: inst.name,
    stop_reason: reason,
    stop_sequence: null,
    usage,
  });
  const promptUsage = (o: Readonly<ChatOutcome>) => ({ cache_read_input_tokens: o.cacheN, input_tokens: o.promptN });
  let started = false;
  // The prompt's usage is known once the prefill is done, which is when the first token comes.
  const start = (o: Readonly<ChatOutcome>): void => {
    if (started) return;
    started = true;
    startSse(ex);
    writeSseEvent(ex, 'message_start', {
      type: 'message_start',
      message: message([], null, { ...promptUsage(o), output_tokens: 0 }),
    });
    writeSseEvent(ex, 'content_block_start', {
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'text', text: '' },
    });
  };
  const onToken = (piece: string, sofar: Readonly<ChatOutcome>): void => {
    if (!stream) return;
    start(sofar);
    writeSseEvent(ex, 'content_block_delta', {
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: piece },
    });
  };
  const outcome = await runTaskFor(inst, ex, task, onToken);
  if (!outcome) return;
  if (!stream) {
    const text = outcome.predicted.join('');
    return sendJson(
      ex,
      200,
      message([{ type: 'text', text }], stopReason(outcome), {
        ...promptUsage(outcome),
        output_tokens: outcome.predicted.length,
      }),
    );
  }
  start(outcome);
  writeSseEvent(ex, 'content_block_stop', { type: 'content_block_stop', index: 0 });
  writeSseEvent(ex, 'message_delta', {
    type: 'message_delta',
    delta: { stop_reason: stopReason(outcome), stop_sequence: null },
    usage: { output_tokens: outcome.predicted.length },
  });
  writeSseEvent(ex, 'message_stop', { type: 'message_stop' });
  endSse(ex);
}

/** `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, the rendered prompt's token count (as the real server). */
export function handleCountTokens(ex: Exchange): void {
  const parsed = parseMessagesRequest(ex.req.body);
  if (!parsed.ok) return sendError(ex, parsed.status, parsed.message);
  sendJson(ex, 200, { input_tokens: parsed.task.prompt.length });
}
