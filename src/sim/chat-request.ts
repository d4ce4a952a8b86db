/**
 * Validation of `POST /v1/chat/completions` bodies as llama-server does it, and the fields it honours:
 * `messages`, `tools` (rendered into the system part, chat-tools.ts), `max_tokens` / `n_predict`, `id_slot`, `cache_prompt`, `stream`, `stream_options.include_usage`
 * and the sampling fields shown later in `/slots`. Unknown fields are ignored.
 */
import type { ChatTask } from './chat-engine.js';
import { parseChatTools } from './chat-tools.js';
import { isObject, parseJsonBody } from './http-io.js';
import { bodySampling, fieldTypeError, intField, replyLength } from './task-params.js';
import { GENERATION_PROMPT, renderChat, TemplateError, tokenizeChat, type ChatMessage } from './tokenizer.js';

/** Reply length when the request sets neither max_tokens nor n_predict (the sim's stand-in for "until EOS"). */
export const DEFAULT_REPLY_TOKENS = 16;

/** A chat request ready to run, or the 400 to answer. */
export type ParsedChat =
  | { ok: true; task: ChatTask; stream: boolean; includeUsage: boolean; model: string | undefined }
  | { ok: false; status: number; message: string };

/** The messages of a body, or the message of the 400 llama-server answers. */
export function parseMessages(body: unknown): ChatMessage[] | string {
  if (!isObject(body) || !('messages' in body)) return "'messages' is required";
  const messages = body.messages;
  if (!Array.isArray(messages)) return "Expected 'messages' to be an array";
  for (const m of messages) {
    if (!isObject(m) || typeof m.role !== 'string') return "Missing 'role' in message";
    if (m.role === 'assistant' && !('content' in m) && !('tool_calls' in m))
      return "Assistant message must contain either 'content' or 'tool_calls'!";
    if (m.role !== 'assistant' && !('content' in m)) return "All non-assistant messages must contain 'content'";
  }
  return messages as ChatMessage[];
}

/** Parses and validates a chat body. */
export function parseChatRequest(raw: Buffer): ParsedChat {
  const parsed = parseJsonBody(raw);
  if (!parsed.ok) return { ok: false, status: 400, message: parsed.message };
  const messages = parseMessages(parsed.value);
  if (typeof messages === 'string') return { ok: false, status: 400, message: messages };
  const body = parsed.value as Record<string, unknown>;
  const wrongType = fieldTypeError(body);
  if (wrongType) return { ok: false, status: 400, message: wrongType };
  const tools = parseChatTools(body.tools);
  if (typeof tools === 'string') return { ok: false, status: 500, message: tools };
  let promptText: string;
  try {
    promptText = renderChat(messages, tools);
  } catch (err) {
    if (err instanceof TemplateError) return { ok: false, status: err.status, message: err.message };
    throw err;
  }

  // llama-server's own `n_predict` wins over the OpenAI names (checked: `n_predict: 0` with `max_tokens: 48` answers
  // without generating).
  const reply = replyLength(body, ['n_predict', 'max_tokens', 'max_completion_tokens'], DEFAULT_REPLY_TOKENS);
  const idSlot = intField(body, 'id_slot');
  const stream = body.stream === true;
  const streamOptions = body.stream_options;
  const includeUsage = stream && isObject(streamOptions) && streamOptions.include_usage === true;

  const task: ChatTask = {
    prompt: tokenizeChat(messages, tools),
    promptText,
    cachePrompt: body.cache_prompt !== false,
    ...reply,
    // -1 is llama-server's "any slot"; other ids wrap modulo the slot count.
    idSlot: idSlot === undefined || idSlot === -1 ? undefined : idSlot,
    params: bodySampling(body, reply, stream, {
      chat_format: 'peg-native',
      reasoning_format: 'deepseek',
      generation_prompt: GENERATION_PROMPT,
    }),
  };
  return { ok: true, task, stream, includeUsage, model: typeof body.model === 'string' ? body.model : undefined };
}
