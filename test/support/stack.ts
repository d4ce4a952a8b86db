/**
 * A whole test stack on loopback: the simulator (llama-server, llama-swap or router mode), the real proxy in front
 * of it, an OpenAI SDK client pointed at the proxy, and the proxy's log lines captured for assertions.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createProxy } from '../../src/proxy.js';
import type { Proxy } from '../../src/proxy.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle, SimOptions } from '../../src/sim/index.js';
import { withDeadline } from './deadline.js';

/** Proxy settings that make small test prompts count as big: 40 words, blocks of 8 words. */
export const TEST_PROXY_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  PORT: '0',
  BIG_THRESHOLD_WORDS: '40',
  WORDS_PER_BLOCK: '8',
  LOG_LEVEL: 'debug',
  ACQUIRE_TIMEOUT: '10',
  CONNECT_TIMEOUT: '2',
  REQUEST_TIMEOUT: '20',
  // Most tests pin the seed's save-after-every-big-request behaviour; smart-policy tests override it.
  SAVE_POLICY: 'always',
  // No background saves unless a test asks for them: they would make save counts depend on timing.
  IDLE_SAVE_SECONDS: '0',
};

export interface StackOptions {
  sim?: Partial<SimOptions>;
  /** Extra or overriding proxy environment variables. */
  env?: Record<string, string>;
  /** Start no simulator; the proxy points at env LLAMA_URL/BACKENDS. */
  noSim?: boolean;
}

export interface Stack {
  sim: SimHandle;
  proxy: Proxy;
  url: string;
  openai: OpenAI;
  logs: LogCapture;
  metaDir: string;
  cacheDir: string;
  /** Stop and restart only the proxy (same dirs, same simulator). */
  restartProxy(env?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

/** Collects the proxy's JSON log lines. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  private waiters: Array<() => void> = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    for (const w of this.waiters.splice(0)) w();
    done();
  }

  /** Lines with this message. */
  withMsg(msg: string): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.msg === msg);
  }

  /** Resolve with the first line matching `predicate`, waiting for new lines up to `ms`. */
  waitFor(
    predicate: (line: Record<string, unknown>) => boolean,
    ms = 5000,
    what = 'a log line',
  ): Promise<Record<string, unknown>> {
    const find = () => this.lines.find(predicate);
    return withDeadline(
      new Promise((resolve) => {
        const check = () => {
          const hit = find();
          if (hit) resolve(hit);
          else this.waiters.push(check);
        };
        check();
      }),
      ms,
      what,
    );
  }
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const root = await mkdtemp(join(tmpdir(), 'proxycache-test-'));
  const cacheDir = join(root, 'kv_cache');
  const metaDir = join(root, 'kv_meta');
  const sim = await startSimulator({
    mode: 'llama-server',
    models: [{ id: 'tiny', nSlots: 2 }],
    slotSavePath: cacheDir,
    cacheRamMiB: 0,
    cost: { timeScale: 0, kvBytesPerToken: 1000 },
    ...options.sim,
  });
  const logs = new LogCapture();
  let baseEnv: Record<string, string> = {
    ...TEST_PROXY_ENV,
    LLAMA_URL: sim.url,
    N_SLOTS: String(options.sim?.models?.[0]?.nSlots ?? 2),
    // What the simulator's RAM cache holds, as an operator would declare it.
    SERVER_CACHE_RAM_MIB: String(Math.ceil(options.sim?.cacheRamMiB ?? 0)),
    META_DIR: metaDir,
    CACHE_DIR: cacheDir,
    ...options.env,
  };

  async function launch(env: Record<string, string>): Promise<{ proxy: Proxy; url: string }> {
    const config = loadConfig([], env);
    const proxy = await createProxy(config, createLogger(config.logLevel, logs));
    const url = await proxy.listen();
    return { proxy, url };
  }

  let current = await launch(baseEnv);
  const stack: Stack = {
    sim,
    get proxy() {
      return current.proxy;
    },
    get url() {
      return current.url;
    },
    get openai() {
      return new OpenAI({ baseURL: `${current.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
    },
    logs,
    metaDir,
    cacheDir,
    async restartProxy(env = {}) {
      await current.proxy.close();
      baseEnv = { ...baseEnv, ...env };
      current = await launch(baseEnv);
    },
    async close() {
      await current.proxy.close().catch(() => undefined);
      await sim.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return stack;
}

/** POST a JSON body to the proxy and return status and parsed body (for cases the SDK hides). */
export async function postJson(
  url: string,
  path: string,
  body: unknown,
  init: RequestInit = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
