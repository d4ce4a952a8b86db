/** Waiting for the proxy's per-request 'chat' log lines (written after the reply and its save, so a bit later). */
import { eventually } from './deadline.js';
import type { LogCapture } from './stack.js';

/** The proxy's n-th 'chat' line (1-based), waiting up to `ms` for it. */
export function nthChatLine(logs: LogCapture, n: number, ms = 2000): Promise<Record<string, unknown>> {
  return eventually(() => logs.withMsg('chat')[n - 1], ms, `chat log line #${n}`);
}
