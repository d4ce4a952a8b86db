/**
 * The soak's chat clients: each one loops until the end of the load, with the official OpenAI SDK (no retries),
 * sending either the next turn of its own conversation (big: above BIG_THRESHOLD_WORDS, so the proxy saves and
 * restores it as other clients take the slots) or a small one-off prompt, streaming or not. One client in ten
 * disconnects from every stream after its first chunks. Every request has a deadline; a request that has no
 * answer by then is aborted and counted as lost.
 */
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { mulberry32 } from '../../src/sim/prng.js';
import { words } from '../../test/support/text.js';

export type ChatResult = 'answered' | 'disconnected' | 'failed' | 'lost';

export interface ChatOutcome {
  client: number;
  big: boolean;
  stream: boolean;
  /** Epoch ms. */
  startedAt: number;
  endedAt: number;
  result: ChatResult;
  /** Failed: the HTTP status, 'stream' for an error event after a 200, 'connection' for a broken connection. */
  status?: string;
  /** Failed: the error code of the envelope (or the network error's code). */
  code?: string;
  /** Streams: time to the first chunk. */
  ttftMs?: number;
}

export interface ChatClientsOptions {
  url: string;
  clients: number;
  /** Epoch ms after which no client starts another request. */
  until: number;
  deadlineMs: number;
  bigWords: { min: number; max: number };
  seed: number;
  onOutcome(outcome: ChatOutcome): void;
}

interface Message {
  role: 'user' | 'assistant';
  content: string;
}

const DISCONNECT_EVERY = 10;
const TURNS_PER_CONVERSATION = 5;
const BIG_SHARE = 0.6;
const STREAM_SHARE = 0.5;
const MAX_THINK_MS = 100;
/** After a failure a client waits a little, as clients with retries do, instead of hammering a backend that is down. */
const BACKOFF_MS = 500;

/**
 * An SDK client on its own connection pool (no retries: a failure is what the soak counts), so that closing it
 * closes its sockets and the proxy's socket count can fall back to its baseline.
 */
export function createChatClient(url: string, deadlineMs: number): { openai: OpenAI; close(): Promise<void> } {
  const agent = new Agent({ connections: null, keepAliveTimeout: 1000 });
  const openai = new OpenAI({
    baseURL: `${url}/v1`,
    apiKey: 'soak',
    maxRetries: 0,
    timeout: deadlineMs * 2,
    fetch: undiciFetch as unknown as typeof fetch,
    fetchOptions: { dispatcher: agent } as Record<string, unknown>,
  });
  return { openai, close: () => agent.close() };
}

/** Run every client until `until`; resolves when the last request of every client has ended. */
export async function runChatClients(opts: ChatClientsOptions): Promise<void> {
  const { openai, close } = createChatClient(opts.url, opts.deadlineMs);
  try {
    await Promise.all(Array.from({ length: opts.clients }, (_, i) => runClient(openai, i, opts)));
  } finally {
    await close();
  }
}

async function runClient(openai: OpenAI, client: number, opts: ChatClientsOptions): Promise<void> {
  const random = mulberry32(opts.seed * 7919 + client);
  const disconnects = client % DISCONNECT_EVERY === 0;
  let conversation: Message[] = [];
  let turns = 0;
  let seed = opts.seed * 100_000 + client * 1000;
  while (Date.now() < opts.until) {
    await new Promise((r) => setTimeout(r, random() * MAX_THINK_MS));
    if (Date.now() >= opts.until) break;
    const big = random() < BIG_SHARE;
    const stream = disconnects || random() < STREAM_SHARE;
    if (big && (conversation.length === 0 || turns >= TURNS_PER_CONVERSATION)) {
      const { min, max } = opts.bigWords;
      conversation = [{ role: 'user', content: words(min + Math.floor(random() * (max - min)), ++seed) }];
      turns = 0;
    }
    const messages: Message[] = big
      ? conversation
      : [{ role: 'user', content: words(5 + Math.floor(random() * 40), ++seed) }];
    const cutAfterChunks = disconnects ? 1 + Math.floor(random() * 3) : undefined;
    const { outcome, reply } = await oneChat(openai, messages, {
      client,
      big,
      stream,
      cutAfterChunks,
      deadlineMs: opts.deadlineMs,
      maxTokens: disconnects ? 48 : 8 + Math.floor(random() * 16),
    });
    opts.onOutcome(outcome);
    if (outcome.result === 'failed') await new Promise((r) => setTimeout(r, BACKOFF_MS * (0.5 + random())));
    if (big && outcome.result === 'answered' && reply !== undefined) {
      conversation = [
        ...conversation,
        { role: 'assistant', content: reply },
        { role: 'user', content: words(20 + Math.floor(random() * 60), ++seed) },
      ];
      turns++;
    }
  }
}

export interface ChatPlan {
  client: number;
  big: boolean;
  stream: boolean;
  /** Disconnect after this many chunks. */
  cutAfterChunks: number | undefined;
  deadlineMs: number;
  maxTokens: number;
}

/** One chat request with its deadline; the reply text when it was answered. */
export async function oneChat(
  openai: OpenAI,
  messages: Message[],
  plan: ChatPlan,
): Promise<{ outcome: ChatOutcome; reply?: string }> {
  const startedAt = Date.now();
  const abort = new AbortController();
  let why: 'deadline' | 'disconnect' | undefined;
  const timer = setTimeout(() => {
    why = 'deadline';
    abort.abort();
  }, plan.deadlineMs);
  const base = { client: plan.client, big: plan.big, stream: plan.stream, startedAt };
  const done = (result: ChatResult, extra: Partial<ChatOutcome> = {}): ChatOutcome => ({
    ...base,
    endedAt: Date.now(),
    result,
    ...extra,
  });
  try {
    const params = { model: 'tiny', messages, max_tokens: plan.maxTokens };
    if (!plan.stream) {
      const res = await openai.chat.completions.create(params, { signal: abort.signal });
      const reply = res.choices[0]?.message.content;
      if (typeof reply !== 'string') return { outcome: done('failed', { status: '200', code: 'no_message' }) };
      return { outcome: done('answered'), reply };
    }
    const stream = await openai.chat.completions.create({ ...params, stream: true }, { signal: abort.signal });
    let reply = '';
    let chunks = 0;
    let finished = false;
    let ttftMs: number | undefined;
    for await (const chunk of stream) {
      ttftMs ??= Date.now() - startedAt;
      reply += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.choices[0]?.finish_reason) finished = true;
      if (plan.cutAfterChunks !== undefined && ++chunks >= plan.cutAfterChunks && !finished) {
        why = 'disconnect';
        abort.abort();
        break;
      }
    }
    // The SDK ends an aborted stream quietly: the reason is ours to tell.
    if (why === 'disconnect') return { outcome: done('disconnected', { ...(ttftMs !== undefined && { ttftMs }) }) };
    if (why === 'deadline') return { outcome: done('lost', { ...(ttftMs !== undefined && { ttftMs }) }) };
    if (!finished)
      return {
        outcome: done('failed', { status: 'stream', code: 'incomplete', ...(ttftMs !== undefined && { ttftMs }) }),
      };
    return { outcome: done('answered', { ...(ttftMs !== undefined && { ttftMs }) }), reply };
  } catch (err) {
    if (why === 'deadline') return { outcome: done('lost') };
    if (why === 'disconnect') return { outcome: done('disconnected') };
    return { outcome: done('failed', describeFailure(err)) };
  } finally {
    clearTimeout(timer);
  }
}

function describeFailure(err: unknown): Pick<ChatOutcome, 'status' | 'code'> {
  if (err instanceof OpenAI.APIConnectionError) {
    return { status: 'connection', code: causeCode(err.cause) };
  }
  if (err instanceof OpenAI.APIError) {
    const code = typeof err.code === 'string' ? err.code : (err.error as { code?: unknown } | undefined)?.code;
    return {
      status: err.status === undefined ? 'stream' : String(err.status),
      code: String(code ?? err.type ?? 'unknown'),
    };
  }
  return { status: 'connection', code: causeCode(err) };
}

function causeCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = e.cause;
  }
  return err instanceof Error ? err.message.slice(0, 60) : String(err);
}
