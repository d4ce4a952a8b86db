/**
 * Validation of `POST /v1/messages` (Anthropic Messages API) bodies as llama-server does it, measured on the real
 * binary: an unparsable body or a missing `messages` is a 500 `server_error`, a message without `role` a 500
 * "Failed to parse messages: …", content the chat parsing refuses once converted its error (refusedContent), a
 * sampling field of the wrong type a 400 (fieldTypeError); `system` becomes the first message; text blocks are
 * kept, `tool_result` blocks become `tool` messages, other blocks are dropped (tool calls are not rendered by the
 * simulator's template); `tools` become chat function tools, rendered in the system part (chat-tools.ts).
 * `id_slot` is IGNORED (the real server's log says "selected slot by LRU" / "by LCP similarity" for it).
 */
import { bodySampling, fieldTypeError, replyLength } from './task-params.js';
import type { ChatTask } from './chat-engine.js';
import { DEFAULT_REPLY_TOKENS } from './chat-request.js';
import { anthropicToChatTools } from './chat-tools.js';
import { isObject, parseJsonBody } from './http-io.js';
import {
  contentText,
  GENERATION_PROMPT,
  renderChat,
  TemplateError,
  tokenizeChat,
  type ChatMessage,
} from './tokenizer.js';

/** A messages request ready to run, or the error to answer. */
export type ParsedMessages =
  { ok: true; task: ChatTask; stream: boolean } | { ok: false; status: number; message: string };

/** The text of Anthropic content: a string, or the `text` of its text blocks. */
function blocksText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b) => (isObject(b) && b.type === 'text' && typeof b.text === 'string' ? b.text : '')).join('');
}

/**
 * One Anthropic message → chat messages, as llama-server's conversion does: its text (and `tool_use` blocks, which
 * become `tool_calls` that this template does not render) as one message, then one `tool` message per
 * `tool_result` block, whose content is a string or the text of its blocks. A message of tool results alone gives
 * only the tool messages.
 */
function convertMessage(role: string, content: unknown): ChatMessage[] {
  if (!Array.isArray(content)) return [{ role, content: blocksText(content) }];
  const results = content.filter((b) => isObject(b) && b.type === 'tool_result') as Array<Record<string, unknown>>;
  const rest = content.filter((b) => !(isObject(b) && b.type === 'tool_result'));
  const out: ChatMessage[] = rest.length > 0 || results.length === 0 ? [{ role, content: blocksText(rest) }] : [];
  for (const r of results) out.push({ role: 'tool', content: blocksText(r.content) });
  return out;
}

/**
 * The error the chat parsing gives a message's content once converted (text blocks as they are, images as image
 * parts, other blocks dropped): content that is neither a string nor an array, a text block without a string
 * `text`, an image on a server without a vision projector.
 */
function refusedContent(content: unknown): { status: number; message: string } | undefined {
  const converted = Array.isArray(content)
    ? content
        .filter((b) => isObject(b) && (b.type === 'text' || b.type === 'image'))
        .map((b) => ((b as Record<string, unknown>).type === 'image' ? { type: 'image_url' } : b))
    : content;
  try {
    contentText(converted);
    return undefined;
  } catch (err) {
    if (err instanceof TemplateError) return { status: err.status, message: err.message };
    throw err;
  }
}

/** Parses and validates a messages body. */
export function parseMessagesRequest(raw: Buffer): ParsedMessages {
  const parsed = parseJsonBody(raw);
  if (!parsed.ok) return { ok: false, status: 500, message: parsed.message };
  const body = isObject(parsed.value) ? parsed.value : {};
  if (!('messages' in body)) return { ok: false, status: 500, message: "'messages' is required" };
  const messages: ChatMessage[] = [];
  if (body.system !== undefined) messages.push({ role: 'system', content: blocksText(body.system) });
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    if (!isObject(m) || typeof m.role !== 'string') {
      return {
        ok: false,
        status: 500,
        message: `Failed to parse messages: Missing 'role' in message: ${JSON.stringify(m)}`,
      };
    }
    if (!('content' in m)) {
      // The conversion drops an assistant message without content; the chat parsing refuses any other.
      if (m.role === 'assistant') continue;
      return { ok: false, status: 400, message: "All non-assistant messages must contain 'content'" };
    }
    const refused = refusedContent(m.content);
    if (refused) return { ok: false, ...refused };
    messages.push(...convertMessage(m.role, m.content));
  }
  // The conversion keeps only these fields, which the chat parsing then reads with their types.
  const wrongType = fieldTypeError(pick(body, ['max_tokens', 'temperature', 'top_k', 'top_p', 'stream']));
  if (wrongType) return { ok: false, status: 400, message: wrongType };

  const tools = anthropicToChatTools(body.tools);
  const reply = replyLength(body, ['max_tokens'], DEFAULT_REPLY_TOKENS);
  const stream = body.stream === true;
  const task: ChatTask = {
    prompt: tokenizeChat(messages, tools),
    promptText: renderChat(messages, tools),
    cachePrompt: body.cache_prompt !== false,
    ...reply,
    idSlot: undefined,
    // llama-server's Anthropic conversion keeps only these sampling fields.
    params: bodySampling(pick(body, ['temperature', 'top_k', 'top_p']), reply, stream, {
      chat_format: 'peg-native',
      reasoning_format: 'deepseek',
      generation_prompt: GENERATION_PROMPT,
    }),
  };
  return { ok: true, task, stream };
}

function pick(body: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in body).map((k) => [k, body[k]]));
}
