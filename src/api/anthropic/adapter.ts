/**
 * The Anthropic Messages API (`POST /v1/messages`, Claude Code's `?beta=true` too) as a generation adapter: the
 * request is converted to chat completions (request.ts) and sent to `/v1/chat/completions` pinned with `id_slot`,
 * because llama-server's own `/v1/messages` ignores `id_slot`; the answer is converted back (response.ts,
 * stream.ts); every error is in Anthropic's shape (errors.ts).
 */
import { canonicalParts } from '../../prompt/prompt-analysis.js';
import type { AnswerConversion, GenerationAdapter, GenerationRequest, HttpInfo, Pin } from '../../generation/adapter.js';
import { backendErrorToAnthropic, renderAnthropicError } from './errors.js';
import { toChatBody, validateMessagesBody } from './request.js';
import type { ConvertedChat } from './request.js';
import { chatToMessage } from './response.js';
import { AnthropicStream } from './stream.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** Whole answers: a chat completion becomes a message; an error status keeps its status in Anthropic's shape. */
export const anthropicAnswer: AnswerConversion = {
  whole({ status, body }) {
    if (status >= 400) return { status, body: JSON.stringify(backendErrorToAnthropic(status, body)), contentType: JSON_TYPE };
    let chat: Record<string, unknown>;
    try {
      chat = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return { status: 502, body: JSON.stringify(backendErrorToAnthropic(502, Buffer.from('the backend answered with invalid JSON'))), contentType: JSON_TYPE };
    }
    return { status, body: JSON.stringify(chatToMessage(chat)), contentType: JSON_TYPE };
  },
  stream: () => new AnthropicStream(),
};

/** The session Claude Code names in `metadata.user_id` (a JSON string holding `session_id`), else the id itself. */
export function sessionOf(metadata: unknown): string | undefined {
  const userId = typeof metadata === 'object' && metadata !== null ? (metadata as { user_id?: unknown }).user_id : undefined;
  if (typeof userId !== 'string' || userId === '') return undefined;
  try {
    const parsed = JSON.parse(userId) as { session_id?: unknown };
    if (typeof parsed.session_id === 'string' && parsed.session_id !== '') return parsed.session_id;
  } catch {
    // A plain id.
  }
  return userId;
}

/** The request described for the flow, with the converted chat body it sends. */
export interface MessagesRequest extends GenerationRequest {
  chat: ConvertedChat;
}

export const anthropicAdapter = {
  api: 'messages',
  read(body: unknown, _http?: HttpInfo): MessagesRequest {
    const messages = validateMessagesBody(body);
    const chat = toChatBody(messages);
    const session = sessionOf(messages.metadata);
    return {
      model: messages.model,
      parts: canonicalParts(chat.messages),
      stream: messages.stream === true,
      cachePromptOff: false,
      ...(session !== undefined && { session }),
      chat,
      backendCall: (pin: Pin) => ({ path: '/v1/chat/completions', body: JSON.stringify({ ...chat, ...pin }) }),
      answer: anthropicAnswer,
    };
  },
  renderError: renderAnthropicError,
} satisfies GenerationAdapter;
