/**
 * Which agent session a request belongs to, when the client says: a body field the adapter read
 * (`prompt_cache_key` of Responses and Chat, Anthropic `metadata.user_id`), else a header (opencode and Kilo
 * `x-session-id`, Claude Code `x-claude-code-session-id`). Requests of one session prefer the slot that session
 * used when matches tie (see slot-planner), and the log line shows it.
 */
import type { HttpInfo } from './adapter.js';

/** The headers that carry a session id, in order of preference. */
const SESSION_HEADERS = ['x-session-id', 'x-claude-code-session-id'] as const;

/** A client controls the id: kept to this many characters (it lives in slot state and in every log line). */
const MAX_SESSION_LENGTH = 128;

/** The request's session id, or undefined when it names none. */
export function sessionOf(fromBody: string | undefined, http: HttpInfo): string | undefined {
  const candidates = [fromBody, ...SESSION_HEADERS.map((name) => header(http, name))];
  const found = candidates.find((s) => typeof s === 'string' && s.trim() !== '');
  return found?.trim().slice(0, MAX_SESSION_LENGTH);
}

function header(http: HttpInfo, name: string): string | undefined {
  const value = http.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
