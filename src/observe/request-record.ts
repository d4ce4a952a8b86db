/**
 * One request as `GET /proxycache/requests` shows it: the `chat` log line (see request-log.ts) reduced to what an
 * operator reads in a list. Pure.
 */
import type { ChatDecision, ChatLogLine } from '../http/request-log.js';

export interface RequestRecord {
  /** When the request ended (ISO). */
  at: string;
  /** The client API it came by: `chat`, `completion`, `infill`, `responses` or `messages`. */
  api: string | null;
  model: string;
  /** First 16 hex digits of the prompt's key. */
  key: string;
  decision: ChatDecision;
  big: boolean;
  /** URL of the backend that served it; null when it never got a slot. */
  backend: string | null;
  slot: number | null;
  status: number;
  /** Prompt tokens the backend reused from the slot's cache, and those it computed (its `timings`). */
  cache_n: number | null;
  prompt_n: number | null;
  wait_ms: number | null;
  total_ms: number | null;
  /** The client went away before the whole answer reached it. */
  client_gone?: true;
  restore_ms?: number;
  restore_ok?: boolean;
  save_ms?: number;
  save_ok?: boolean;
  evict_save_ms?: number;
  evict_save_ok?: boolean;
  /** A big request that let small prompts on their way start first: how long it waited. */
  small_first_ms?: number;
}

/** The record of one `chat` log line, stamped `at` (milliseconds since the epoch). */
export function recordOf(line: ChatLogLine, at: number): RequestRecord {
  return {
    at: new Date(at).toISOString(),
    api: line.api ?? null,
    model: line.model,
    key: line.key,
    decision: line.decision,
    big: line.big ?? false,
    backend: line.backend ?? null,
    slot: line.slot ?? null,
    status: line.status,
    cache_n: line.cache_n ?? null,
    prompt_n: line.prompt_n ?? null,
    wait_ms: line.wait_ms ?? null,
    total_ms: line.total_ms ?? null,
    ...(line.client_gone && { client_gone: true }),
    ...(line.restore && { restore_ms: line.restore.ms, restore_ok: line.restore.ok }),
    ...(line.save && { save_ms: line.save.ms, save_ok: line.save.ok }),
    ...(line.evict_save && { evict_save_ms: line.evict_save.ms, evict_save_ok: line.evict_save.ok }),
    ...(line.small_first_ms !== undefined && { small_first_ms: line.small_first_ms }),
  };
}
