/** Validation of an incoming chat completion body: the shape the proxy relies on, in the OpenAI error shape. */
import { badRequest } from '../errors.js';

export interface ChatBody extends Record<string, unknown> {
  messages: Array<Record<string, unknown>>;
  model?: unknown;
  stream?: unknown;
}

/** Return the body typed, or throw a 400 ProxyError that names the offending field. */
export function validateChatBody(body: unknown): ChatBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('request body must be a JSON object');
  }
  const { messages, stream, model } = body as Record<string, unknown>;
  if (messages === undefined) throw badRequest("'messages' is required", 'messages');
  if (!Array.isArray(messages) || messages.length === 0) {
    throw badRequest("'messages' must be a non-empty array", 'messages');
  }
  const bad = messages.findIndex((m) => typeof m !== 'object' || m === null || Array.isArray(m));
  if (bad >= 0) throw badRequest(`'messages[${bad}]' must be an object`, `messages[${bad}]`);
  if (stream !== undefined && typeof stream !== 'boolean') throw badRequest("'stream' must be a boolean", 'stream');
  if (model !== undefined && typeof model !== 'string') throw badRequest("'model' must be a string", 'model');
  return body as ChatBody;
}
