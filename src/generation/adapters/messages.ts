/**
 * `POST /v1/messages` (Anthropic Messages; Claude Code sends `?beta=true`). llama-server's own `/v1/messages` ignores
 * `id_slot`, so the request is converted to chat completions the way that route does it (api/anthropic/request.ts)
 * and sent to `/v1/chat/completions` pinned; the answer is converted back (response.ts whole, stream.ts for SSE) and
 * every error of the route is in Anthropic's shape (errors.ts). The canonical prompt is that of the converted chat
 * body, so a conversation has the same key whichever of the two APIs carries it. The session is Claude Code's
 * `metadata.user_id` (the flow falls back to its `x-claude-code-session-id` header, which holds the same id).
 */
import { backendErrorToAnthropic, renderAnthropicError } from '../../api/anthropic/errors.js';
import { toChatBody, validateMessagesBody } from '../../api/anthropic/request.js';
import { chatToMessage } from '../../api/anthropic/response.js';
import { AnthropicStream } from '../../api/anthropic/stream.js';
import { canonicalParts } from '../../prompt/prompt-analysis.js';
import { startsWithSystemText, withToolsPart } from '../../prompt/tools-part.js';
import type { AnswerConversion, GenerationAdapter } from '../adapter.js';
import { replayWithReply } from './chat.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** Whole answers: a chat completion becomes a message; an error status keeps its status in Anthropic's shape. */
const messagesAnswer: AnswerConversion = {
  whole({ status, body }) {
    if (status >= 400)
      return { status, body: JSON.stringify(backendErrorToAnthropic(status, body)), contentType: JSON_TYPE };
    let chat: Record<string, unknown>;
    try {
      chat = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return {
        status: 502,
        body: JSON.stringify(backendErrorToAnthropic(502, Buffer.from('the backend answered with invalid JSON'))),
        contentType: JSON_TYPE,
      };
    }
    return { status, body: JSON.stringify(chatToMessage(chat)), contentType: JSON_TYPE };
  },
  stream: () => new AnthropicStream(),
};

/**
 * The session `metadata.user_id` names. Claude Code sends a JSON string holding `session_id` (its
 * `x-claude-code-session-id`); older versions `user_…_account_…_session_<id>`. Any other id is taken as it is.
 */
export function messagesSession(metadata: unknown): string | undefined {
  const userId =
    typeof metadata === 'object' && metadata !== null ? (metadata as { user_id?: unknown }).user_id : undefined;
  if (typeof userId !== 'string' || userId.trim() === '') return undefined;
  try {
    const parsed = JSON.parse(userId) as { session_id?: unknown } | null;
    if (typeof parsed?.session_id === 'string' && parsed.session_id !== '') return parsed.session_id;
  } catch {
    // Not JSON: a plain id.
  }
  return /_session_([^_\s]+)$/.exec(userId)?.[1] ?? userId;
}

export const messagesAdapter: GenerationAdapter = {
  api: 'messages',
  read(raw) {
    const body = validateMessagesBody(raw);
    const chat = toChatBody(body);
    const session = messagesSession(body.metadata);
    return {
      model: body.model,
      parts: withToolsPart(canonicalParts(chat.messages), startsWithSystemText(chat.messages), chat.tools),
      stream: body.stream === true,
      // The conversion drops `cache_prompt` (llama-server's route does too): the server's default applies.
      cachePromptOff: false,
      ...(session !== undefined && { session }),
      backendCall: (pin) => ({ path: '/v1/chat/completions', body: JSON.stringify({ ...chat, ...pin }) }),
      ...replayWithReply(chat),
      answer: messagesAnswer,
    };
  },
  renderError: renderAnthropicError,
};
