/**
 * One error type for everything the proxy answers with, rendered in the OpenAI error envelope:
 * `{"error": {"message", "type", "param", "code"}}`.
 */

export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'server_error'
  | 'service_unavailable_error'
  | 'timeout_error';

const TYPE_BY_STATUS: Record<number, OpenAiErrorType> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  502: 'server_error',
  503: 'service_unavailable_error',
  504: 'timeout_error',
};

/** An error with an HTTP status, a stable machine code and an optional cause kept for the log only. */
export class ProxyError extends Error {
  readonly status: number;
  readonly code: string;
  readonly param: string | null;

  constructor(status: number, code: string, message: string, options: { cause?: unknown; param?: string } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ProxyError';
    this.status = status;
    this.code = code;
    this.param = options.param ?? null;
  }

  get type(): OpenAiErrorType {
    return TYPE_BY_STATUS[this.status] ?? (this.status >= 500 ? 'server_error' : 'invalid_request_error');
  }

  toJSON(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | number | null };
}

/** 400: the request itself is wrong. */
export function badRequest(message: string, param?: string): ProxyError {
  return new ProxyError(400, 'invalid_request', message, { param });
}

/** 502: the backend could not be reached or broke the connection. */
export function backendUnreachable(url: string, cause: unknown): ProxyError {
  return new ProxyError(502, 'backend_unreachable', `backend ${url} is unreachable: ${describeCause(cause)}`, {
    cause,
  });
}

/** 504: the backend did not answer in time. */
export function backendTimeout(url: string, cause: unknown): ProxyError {
  return new ProxyError(504, 'backend_timeout', `backend ${url} did not answer in time`, { cause });
}

/** 503: no slot became free within ACQUIRE_TIMEOUT. */
export function noSlotAvailable(waitedSeconds: number): ProxyError {
  return new ProxyError(
    503,
    'no_slot_available',
    `all slots stayed busy for ${waitedSeconds} s (ACQUIRE_TIMEOUT); retry later`,
  );
}

/** A short, log-safe description of an unknown thrown value (its code and message, never a stack). */
export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const inner = cause.cause instanceof Error ? ` (${describeCause(cause.cause)})` : '';
    return `${typeof code === 'string' ? code + ': ' : ''}${cause.message}${inner}`;
  }
  return String(cause);
}
