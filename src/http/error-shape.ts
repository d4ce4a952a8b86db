/**
 * Which API's error shape a request gets, chosen by its path in this one place: Anthropic's
 * `{"type":"error","error":{"type","message"}}` under `/v1/messages` (what the Anthropic SDK and Claude Code parse),
 * the OpenAI envelope everywhere else. The Messages route renders its own errors with the same function
 * (api/anthropic/errors.ts), so a 401 of the key check and a 400 of the route look alike.
 */
import { renderAnthropicError } from '../api/anthropic/errors.js';
import type { AnthropicErrorBody } from '../api/anthropic/errors.js';
import type { OpenAiErrorBody, ProxyError } from '../errors.js';

export type ErrorApi = 'openai' | 'anthropic';

/** The API whose error shape answers a request for `url` (path with an optional query). */
export function errorApiOf(url: string): ErrorApi {
  const path = url.split('?', 1)[0]!;
  return path === '/v1/messages' || path.startsWith('/v1/messages/') ? 'anthropic' : 'openai';
}

/** `err` rendered for the API of `url`. */
export function errorBodyFor(err: ProxyError, url: string): OpenAiErrorBody | AnthropicErrorBody {
  return errorApiOf(url) === 'openai' ? err.toJSON() : renderAnthropicError(err);
}
