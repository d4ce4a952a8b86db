/**
 * A real llama-server for the bench: found from `LLAMA_SERVER_BIN` or the shared portable build, started as a child
 * process on loopback with the flags of one configuration, and restarted on the same port (slots and RAM cache gone,
 * slot files kept). Its written bytes come from /proc (Linux), as a cross-check of what the proxy logs.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

/** dist/bench → the repository root; the shared build sits beside it. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHARED_BIN = resolve(REPO_ROOT, '../shared/llama-server/llama-server');
const START_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 10_000;

export interface LlamaServerBinary {
  bin: string;
  /** tiny-chat.gguf beside the binary. */
  model: string;
}

/** The binary to run, or why there is none. */
export function findLlamaServer(env: NodeJS.ProcessEnv = process.env): LlamaServerBinary | { missing: string } {
  const bin = env.LLAMA_SERVER_BIN || (existsSync(SHARED_BIN) ? SHARED_BIN : undefined);
  if (!bin) return { missing: `no llama-server: set LLAMA_SERVER_BIN or put one at ${SHARED_BIN}` };
  if (!existsSync(bin)) return { missing: `LLAMA_SERVER_BIN=${bin} does not exist` };
  const model = env.LLAMA_MODEL || join(dirname(bin), 'tiny-chat.gguf');
  if (!existsSync(model)) return { missing: `no model at ${model} (set LLAMA_MODEL)` };
  return { bin, model };
}

export interface RealServer {
  url: string;
  /** Kill the server and start it again with the same flags on the same port; resolves when /health is 200. */
  restart(): Promise<void>;
  /** Bytes the server processes wrote (`wchar` of /proc/PID/io: files, sockets and logs), summed over restarts. */
  writtenChars(): Promise<number>;
  stop(): Promise<void>;
}

/** Start llama-server with `args` (besides model, host, port and --slot-save-path) and wait until it is healthy. */
export async function startRealServer(
  binary: LlamaServerBinary,
  saveDir: string,
  args: readonly string[],
): Promise<RealServer> {
  // Flash attention stays at llama-server's default (auto, on for the CPU): with -fa off, the default configuration's
  // unified KV buffer makes every token attend over all slots' cells, several times slower with this small model.
  const base = [
    '-m',
    binary.model,
    '-a',
    'tiny-chat',
    '--host',
    '127.0.0.1',
    '--slot-save-path',
    saveDir,
    '--jinja',
    ...args,
  ];
  let child = await launch(binary.bin, [...base, '--port', '0']);
  const url = child.url;
  const port = new URL(url).port;
  let retiredChars = 0;
  return {
    url,
    async restart() {
      retiredChars += await child.writtenChars();
      await child.stop();
      // The port was free a moment ago and llama-server sets SO_REUSEADDR; the proxy keeps pointing at it.
      child = await launch(binary.bin, [...base, '--port', port]);
    },
    writtenChars: async () => retiredChars + (await child.writtenChars()),
    stop: () => child.stop(),
  };
}

interface Launched {
  url: string;
  writtenChars(): Promise<number>;
  stop(): Promise<void>;
}

/** Servers still running: killed when this process exits, so that a run cut short (a test's deadline) leaves none. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function launch(bin: string, args: string[]): Promise<Launched> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise<void>((done) => child.once('close', () => done(void running.delete(child))));
  try {
    const url = await listeningUrl(child);
    await waitHealthy(url);
    let lastChars = 0;
    return {
      url,
      async writtenChars() {
        const io = await readFile(`/proc/${child.pid}/io`, 'utf8').catch(() => '');
        lastChars = Number(/wchar:\s+(\d+)/.exec(io)?.[1] ?? lastChars);
        return lastChars;
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await withTimeout(exited, STOP_DEADLINE_MS, `llama-server (pid ${child.pid}) to exit`);
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
}

/** llama-server logs `listening on http://HOST:PORT` once its socket is bound (port 0 picks a free one). */
function listeningUrl(child: ChildProcess): Promise<string> {
  let output = '';
  const found = new Promise<string>((resolveUrl, reject) => {
    let seen = false;
    // Keep draining both pipes after the line was seen, so that the server never blocks on a full pipe.
    const onData = (d: Buffer) => {
      if (seen) return;
      output = (output + d.toString('utf8')).slice(-20_000);
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (!match) return;
      seen = true;
      resolveUrl(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('close', (code) =>
      reject(new Error(`llama-server exited with ${code} before listening:\n${output.slice(-2000)}`)),
    );
    child.once('error', reject);
  });
  return withTimeout(found, START_DEADLINE_MS, 'llama-server to listen');
}

async function waitHealthy(url: string): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  while (Date.now() < deadline) {
    const status = await request(`${url}/health`).then(
      async (r) => (await r.body.text(), r.statusCode),
      () => 0,
    );
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`llama-server at ${url} not healthy within ${START_DEADLINE_MS} ms`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
