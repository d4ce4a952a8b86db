/**
 * `POST /v1/chat/completions`: the body goes to the backend as the client sent it, plus the pin. The canonical
 * prompt is each message's content (see prompt-analysis.canonicalParts), roles ignored, with the tool definitions
 * after a leading system message (see tools-part.ts).
 */
import { upstreamBody } from '../../http/json-body.js';
import { canonicalParts } from '../../prompt/prompt-analysis.js';
import { startsWithSystemText, withToolsPart } from '../../prompt/tools-part.js';
import type { GenerationAdapter } from '../adapter.js';
import { validateChatBody } from '../chat-request.js';

export const chatAdapter: GenerationAdapter = {
  api: 'chat',
  read(raw) {
    const body = validateChatBody(raw);
    return {
      model: typeof body.model === 'string' ? body.model : undefined,
      parts: withToolsPart(canonicalParts(body.messages), startsWithSystemText(body.messages), body.tools),
      stream: body.stream === true,
      cachePromptOff: body.cache_prompt === false,
      ...(typeof body.prompt_cache_key === 'string' && { session: body.prompt_cache_key }),
      backendCall: (pin) => ({ path: '/v1/chat/completions', body: upstreamBody(body, { ...pin }) }),
      // A request that ends with an assistant message was itself continued: its reply is not a message of its own.
      ...(!endsWithAssistant(body.messages) && {
        backendCallWithReply: (pin, reply) => ({
          path: '/v1/chat/completions',
          body: JSON.stringify({
            ...body,
            ...pin,
            messages: [...body.messages, { role: 'assistant', content: reply }],
          }),
        }),
      }),
    };
  },
};

/** Whether the last message is the assistant's (llama-server continues it: assistant prefill). */
export function endsWithAssistant(messages: readonly unknown[]): boolean {
  const last = messages.at(-1) as { role?: unknown } | undefined;
  return last?.role === 'assistant';
}
