/**
 * Which API's error shape a request gets, chosen by its path in this one place: Anthropic's
 * `{"type":"error","error":{"type","message"}}` under `/v1/messages` (what the Anthropic SDK and Claude Code parse),
 * the OpenAI envelope everywhere else.
 */
import type { OpenAiErrorBody, ProxyError } from '../errors.js';

export type ErrorApi = 'openai' | 'anthropic';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

/** Anthropic's error types by status (its documented set); other statuses fall back by class. */
const ANTHROPIC_TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  503: 'overloaded_error',
  529: 'overloaded_error',
};

/** The API whose error shape answers a request for `url` (path with an optional query). */
export function errorApiOf(url: string): ErrorApi {
  const path = url.split('?', 1)[0]!;
  return path === '/v1/messages' || path.startsWith('/v1/messages/') ? 'anthropic' : 'openai';
}

/** `err` rendered for the API of `url`. */
export function errorBodyFor(err: ProxyError, url: string): OpenAiErrorBody | AnthropicErrorBody {
  if (errorApiOf(url) === 'openai') return err.toJSON();
  const type = ANTHROPIC_TYPE_BY_STATUS[err.status] ?? (err.status >= 500 ? 'api_error' : 'invalid_request_error');
  return { type: 'error', error: { type, message: err.message } };
}
