/**
 * `POST /v1/chat/completions`: the body goes to the backend as the client sent it, plus the pin. The canonical
 * prompt is each message's content (see prompt-analysis.canonicalParts), roles ignored, with the tool definitions
 * after a leading system message (see tools-part.ts).
 */
import { upstreamBody } from '../../http/json-body.js';
import { canonicalParts } from '../../prompt/prompt-analysis.js';
import { startsWithSystemText, withToolsPart } from '../../prompt/tools-part.js';
import type { GenerationAdapter, GenerationRequest } from '../adapter.js';
import { llamaFields } from '../body-fields.js';
import { validateChatBody } from '../chat-request.js';

export const chatAdapter: GenerationAdapter = {
  api: 'chat',
  read(raw) {
    const body = validateChatBody(raw);
    return {
      model: typeof body.model === 'string' ? body.model : undefined,
      parts: withToolsPart(canonicalParts(body.messages), startsWithSystemText(body.messages), body.tools),
      stream: body.stream === true,
      ...llamaFields(body),
      ...(typeof body.prompt_cache_key === 'string' && { session: body.prompt_cache_key }),
      backendCall: (pin) => ({ path: '/v1/chat/completions', body: upstreamBody(body, { ...pin }) }),
      ...replayWithReply(body),
    };
  },
};

/**
 * A chat body's replay with the answer's text as a last assistant message (see ReplayWithReply); none for a request
 * that ended with an assistant message: its reply continued that message, it is not one of its own.
 */
export function replayWithReply(
  chat: Record<string, unknown> & { messages: readonly unknown[] },
): Pick<GenerationRequest, 'replayWithReply'> {
  if (endsWithAssistant(chat.messages)) return {};
  return {
    replayWithReply: {
      answerShape: 'chat',
      call: (pin, reply) => ({
        path: '/v1/chat/completions',
        body: JSON.stringify({ ...chat, ...pin, messages: [...chat.messages, { role: 'assistant', content: reply }] }),
      }),
    },
  };
}

/** Whether the last message or input item is the assistant's. */
export function endsWithAssistant(items: readonly unknown[]): boolean {
  return (items.at(-1) as { role?: unknown } | undefined)?.role === 'assistant';
}
