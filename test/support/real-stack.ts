/**
 * The test:real stack: a real llama-server (child process), the proxy in front of it (in-process, its log lines
 * captured), OpenAI SDK clients for the proxy and for the server directly (a second client behind the proxy's
 * back), and helpers to read what the server says about its slots. Everything on loopback, every wait bounded.
 */
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createProxy } from '../../src/proxy.js';
import type { Proxy } from '../../src/proxy.js';
import { withDeadline } from './deadline.js';
import { startRealServer } from './real-server.js';
import type { LlamaServerLocation, RealServer, RealServerOptions } from './real-server.js';
import { LogCapture } from './stack.js';
import { words } from './text.js';

/** The alias the plain server reports and requests name. */
export const REAL_MODEL = 'tiny';
/** Words in a conversation's opening: above the default BIG_THRESHOLD_WORDS (500); ~740 tokens on the tiny model. */
export const REAL_BIG_WORDS = 700;

export interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface RealTimings {
  cache_n: number;
  prompt_n: number;
  predicted_n: number;
}

export interface RealChat {
  content: string;
  timings: RealTimings;
  /** cache_n + prompt_n. */
  promptTokens: number;
  /** Tokens the slot holds after this answer: prompt + generated − 1 (what a save writes). */
  slotTokens: number;
  /** The proxy's 'chat' log line (undefined for a direct request). */
  line: Record<string, any>;
}

export interface RealStackOptions {
  server: Omit<RealServerOptions, 'bin' | 'model' | 'saveDir' | 'modelsDir'> & { router?: string[] };
  /** Extra or overriding proxy environment variables. */
  env?: Record<string, string>;
}

export interface RealStack {
  server: RealServer;
  proxy: Proxy;
  /** The proxy's base URL. */
  url: string;
  openai: OpenAI;
  /** A client talking to llama-server directly, behind the proxy's back. */
  direct: OpenAI;
  logs: LogCapture;
  metaDir: string;
  /** The server's --slot-save-path, which is the proxy's CACHE_DIR. */
  cacheDir: string;
  close(): Promise<void>;
}

/** Proxy settings for the real suite: defaults everywhere except what a test on loopback needs. */
const REAL_PROXY_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  PORT: '0',
  LOG_LEVEL: 'debug',
  ACQUIRE_TIMEOUT: '20',
  CONNECT_TIMEOUT: '2',
  REQUEST_TIMEOUT: '30',
};

/**
 * Start a real llama-server (router mode over symlinks named `server.router` to the model when given) and the
 * proxy in front of it. Everything started is stopped by `close()`, also when the start fails half-way.
 */
export async function startRealStack(
  location: { bin: string; model: string },
  opts: RealStackOptions,
): Promise<RealStack> {
  const root = await mkdtemp(join(tmpdir(), 'proxycache-real-'));
  const cacheDir = join(root, 'kv_cache');
  const metaDir = join(root, 'kv_meta');
  await mkdir(cacheDir);
  let modelsDir: string | undefined;
  if (opts.server.router) {
    modelsDir = join(root, 'models');
    await mkdir(modelsDir);
    for (const name of opts.server.router) await symlink(location.model, join(modelsDir, `${name}.gguf`));
  }
  const { router: _router, ...serverOpts } = opts.server;
  let server: RealServer | undefined;
  let proxy: Proxy | undefined;
  const cleanup = async () => {
    await proxy?.close().catch(() => undefined);
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  };
  try {
    server = await startRealServer({
      ...serverOpts,
      bin: location.bin,
      model: location.model,
      saveDir: cacheDir,
      ...(modelsDir && { modelsDir }),
    });
    const logs = new LogCapture();
    // The server's --cache-ram, as its operator tells the proxy.
    const ramAt = serverOpts.args?.indexOf('--cache-ram') ?? -1;
    const declaredRam = ramAt >= 0 ? { SERVER_CACHE_RAM_MIB: serverOpts.args![ramAt + 1]! } : {};
    const config = loadConfig([], {
      ...REAL_PROXY_ENV,
      ...declaredRam,
      LLAMA_URL: server.url,
      META_DIR: metaDir,
      CACHE_DIR: cacheDir,
      ...opts.env,
    });
    proxy = await createProxy(config, createLogger(config.logLevel, logs));
    const url = await proxy.listen();
    return {
      server,
      proxy,
      url,
      openai: client(`${url}/v1`),
      direct: client(`${server.url}/v1`),
      logs,
      metaDir,
      cacheDir,
      close: () => withDeadline(cleanup(), 30_000, 'the real stack to close'),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The server most scenarios run: two slots and no RAM cache, so a conversation is only in its slot or on disk. */
const TWO_SLOTS_NO_RAM_CACHE: RealStackOptions['server'] = { slots: 2, args: ['--cache-ram', '0'] };

/** A fresh real stack for each test of a describe block: `start` in the test, `close` in afterEach. */
export interface RealStackPerTest {
  /** Start the server and the proxy (with `env` over the defaults); throws when the suite has no server. */
  start(env?: Record<string, string>): Promise<RealStack>;
  /** Close what the last `start` started, if anything. */
  close(): Promise<void>;
}

/** Per-test stacks on the server found at `where`, started as `server` says (two slots, no RAM cache by default). */
export function realStackPerTest(
  where: LlamaServerLocation,
  server: RealStackOptions['server'] = TWO_SLOTS_NO_RAM_CACHE,
): RealStackPerTest {
  let current: RealStack | undefined;
  return {
    async start(env = {}) {
      if ('skip' in where) throw new Error(where.skip);
      current = await startRealStack(where, { server, env });
      return current;
    },
    async close() {
      const stack = current;
      current = undefined;
      await stack?.close();
    },
  };
}

function client(baseURL: string): OpenAI {
  return new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
}

/** The first user message of a conversation. */
export function openingOf(seed: number, count = REAL_BIG_WORDS): Message[] {
  return [{ role: 'user', content: words(count, seed) }];
}

/** The conversation so far, the reply it got, and a short new user message. */
export function nextTurn(messages: readonly Message[], reply: string, seed: number): Message[] {
  return [...messages, { role: 'assistant', content: reply }, { role: 'user', content: words(12, seed) }];
}

export interface ChatOptions {
  stream?: boolean;
  maxTokens?: number;
  model?: string;
  /** Extra body fields (e.g. `id_slot` for a direct request). */
  extra?: Record<string, unknown>;
}

/**
 * One chat with the OpenAI SDK (temperature 0). Through the proxy (`stack.openai`) it resolves once the proxy logged
 * the request (after its save and the release of its slot); through `stack.direct` it has no log line.
 */
export async function realChat(
  stack: RealStack,
  via: 'proxy' | 'direct',
  messages: readonly Message[],
  opts: ChatOptions = {},
): Promise<RealChat> {
  const mark = stack.logs.lines.length;
  const openai = via === 'proxy' ? stack.openai : stack.direct;
  const params = {
    model: opts.model ?? REAL_MODEL,
    messages: [...messages],
    max_tokens: opts.maxTokens ?? 8,
    temperature: 0,
    ...opts.extra,
  };
  let content = '';
  let timings: RealTimings | undefined;
  if (opts.stream) {
    const stream = await openai.chat.completions.create({ ...params, stream: true });
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta?.content ?? '';
      timings = (chunk as unknown as { timings?: RealTimings }).timings ?? timings;
    }
  } else {
    const res = await openai.chat.completions.create(params);
    content = res.choices[0]?.message.content ?? '';
    timings = (res as unknown as { timings?: RealTimings }).timings;
  }
  if (!timings) throw new Error('the answer carried no timings');
  const line =
    via === 'proxy'
      ? await stack.logs.waitFor(
          (l) => l.msg === 'chat' && stack.logs.lines.indexOf(l) >= mark,
          10_000,
          "the proxy's chat log line",
        )
      : {};
  const promptTokens = timings.cache_n + timings.prompt_n;
  return { content, timings, promptTokens, slotTokens: promptTokens + timings.predicted_n - 1, line };
}

/** One slot as GET /slots reports it. */
export interface ServerSlot {
  id: number;
  is_processing: boolean;
  id_task?: number;
  /** Tokens in the slot's KV (absent before the slot served a task). */
  n_prompt_tokens?: number;
}

/** GET /slots from the server itself (`?model=` in router mode). */
export async function serverSlots(server: RealServer, model?: string): Promise<ServerSlot[]> {
  const res = await fetch(`${server.url}/slots${model ? `?model=${encodeURIComponent(model)}` : ''}`, {
    signal: AbortSignal.timeout(5000),
  });
  if (res.status !== 200) throw new Error(`GET /slots answered ${res.status}`);
  return (await res.json()) as ServerSlot[];
}

/** A slot action sent to the server directly (behind the proxy's back). */
export async function directSlotAction(
  server: RealServer,
  id: number,
  action: 'save' | 'restore' | 'erase',
  body: Record<string, unknown> = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}/slots/${id}?action=${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.json() };
}
