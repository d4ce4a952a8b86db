/**
 * Anthropic's error shape, `{"type":"error","error":{"type","message"}}`, for every failure under `/v1/messages`:
 * the proxy's own errors (ProxyError: the Messages route's, and through http/error-shape.ts the key check's 401, the
 * count_tokens passthrough's and the not-found answer's), a backend's error answer, and the `error` event that ends
 * a broken stream. The one status → type table.
 */
import type { ProxyError } from '../../errors.js';

export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'overloaded_error'
  | 'timeout_error';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: AnthropicErrorType; message: string };
}

const TYPE_BY_STATUS: Record<number, AnthropicErrorType> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** The Anthropic error type for an HTTP status (Anthropic's documented table; other 4xx are invalid requests). */
function anthropicErrorType(status: number): AnthropicErrorType {
  return TYPE_BY_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export function anthropicError(status: number, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type: anthropicErrorType(status), message } };
}

/** A ProxyError rendered in Anthropic's shape (the status stays the ProxyError's). */
export function renderAnthropicError(err: ProxyError): AnthropicErrorBody {
  return anthropicError(err.status, err.message);
}

/**
 * A backend's error answer (llama-server's `{"error":{"message",…}}`, or anything else) in Anthropic's shape, with
 * the backend's status.
 */
export function backendErrorToAnthropic(status: number, body: Buffer): AnthropicErrorBody {
  const text = body.toString('utf8');
  let message = text.trim() || `backend answered ${status}`;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const inner =
      typeof parsed.error === 'object' && parsed.error !== null
        ? parsed.error.message
        : (parsed.error ?? parsed.message);
    if (typeof inner === 'string' && inner !== '') message = inner;
  } catch {
    // Not JSON: its text is the message.
  }
  return anthropicError(status, message);
}
