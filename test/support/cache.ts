/**
 * Helpers for the cache-behaviour integration tests: conversations of deterministic words, one chat through the
 * proxy that waits for the proxy's own 'chat' log line (written after the slot was saved and released), and
 * views of the simulator's events and of META_DIR.
 */
import { createHash } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChatEvent, SimEvent, SimHandle, SlotFileEvent } from '../../src/sim/index.js';
import type { LogCapture, Stack } from './stack.js';
import { words } from './text.js';

export const MODEL = 'tiny';
/** Words in an opening message: > BIG_THRESHOLD_WORDS (40) and a whole number of 8-word blocks. */
export const BIG_WORDS = 64;

export interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface Timings {
  cache_n: number;
  prompt_n: number;
  predicted_n: number;
}

export interface ChatResult {
  content: string;
  finishReason: string | null | undefined;
  timings: Timings;
  /** The proxy's 'chat' log line for this request. */
  line: Record<string, any>;
}

/** The first user message of a conversation: `count` deterministic words. */
export function opening(seed: number, count = BIG_WORDS): Message[] {
  return [{ role: 'user', content: words(count, seed) }];
}

/** The conversation so far, the assistant's reply, and a short new user message. */
export function continued(messages: readonly Message[], reply: string, seed: number): Message[] {
  return [...messages, { role: 'assistant', content: reply }, { role: 'user', content: words(6, seed) }];
}

/** Resolve with the first log line at index >= `mark` with message `msg` (and matching `predicate`). */
export function logLineAfter(
  logs: LogCapture,
  mark: number,
  msg: string,
  predicate: (line: Record<string, any>) => boolean = () => true,
  ms = 5000,
): Promise<Record<string, any>> {
  return logs.waitFor(
    (l) => l.msg === msg && logs.lines.indexOf(l) >= mark && predicate(l),
    ms,
    `log line '${msg}' after #${mark}`,
  );
}

/**
 * One chat through the proxy with the OpenAI SDK (streaming or not); resolves once the proxy logged the request,
 * i.e. after its save and the release of its slot, so the next request sees a settled state.
 */
export async function chat(
  stack: Stack,
  messages: readonly Message[],
  opts: { stream?: boolean; maxTokens?: number; model?: string } = {},
): Promise<ChatResult> {
  const mark = stack.logs.lines.length;
  const params = { model: opts.model ?? MODEL, messages: [...messages], max_tokens: opts.maxTokens ?? 8 };
  let content = '';
  let finishReason: string | null | undefined;
  let timings: Timings | undefined;
  if (opts.stream) {
    const stream = await stack.openai.chat.completions.create({ ...params, stream: true });
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta?.content ?? '';
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
      timings = (chunk as unknown as { timings?: Timings }).timings ?? timings;
    }
  } else {
    const res = await stack.openai.chat.completions.create(params);
    content = res.choices[0]?.message.content ?? '';
    finishReason = res.choices[0]?.finish_reason;
    timings = (res as unknown as { timings?: Timings }).timings;
  }
  if (!timings) throw new Error('the answer carried no timings');
  // This request's line: another request's may come first.
  const key = keyOf(messages, params.model).slice(0, 16);
  const line = await logLineAfter(stack.logs, mark, 'chat', (l) => l.key === key);
  return { content, finishReason, timings, line };
}

/** Simulator events recorded at index >= `mark`. */
export function eventsSince(sim: SimHandle, mark: number): SimEvent[] {
  return sim.events.slice(mark);
}

/** Saves or restores at index >= `mark`. */
export function slotFileEvents(sim: SimHandle, type: 'save' | 'restore', mark = 0): SlotFileEvent[] {
  return eventsSince(sim, mark).filter((e): e is SlotFileEvent => e.type === type);
}

/** Chats that ran to the end, at index >= `mark`. */
export function chatEvents(sim: SimHandle, mark = 0): ChatEvent[] {
  return eventsSince(sim, mark).filter((e): e is ChatEvent => e.type === 'chat');
}

/**
 * The seed's key, computed here without the proxy's code: SHA-256 hex of `model + "\n" + text`, where text is
 * every message's trimmed, non-empty content joined with a blank line.
 */
export function keyOf(messages: readonly Message[], model = MODEL): string {
  const text = messages
    .map((m) => m.content.trim())
    .filter((c) => c !== '')
    .join('\n\n');
  return createHash('sha256').update(`${model}\n${text}`, 'utf8').digest('hex');
}

/** `{META_DIR}/{key}.meta.json`. */
export function metaPath(metaDir: string, key: string): string {
  return join(metaDir, `${key}.meta.json`);
}

export async function readMeta(metaDir: string, key: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(metaPath(metaDir, key), 'utf8')) as Record<string, any>;
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
