/**
 * The one place that finds and launches a real llama-server, for the test:real suite and the real bench: where the
 * binary and model are, starting one on a free loopback port with given arguments, waiting for /health with a
 * deadline, restarting it on the same port and save directory, and killing it (its whole process group, so router
 * children go too) on stop, on a failed start and when this process ends, by exit or by signal. `startRealServer`
 * adds the suite's flags; the bench adds its own in bench/real-server.ts.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onExit } from 'signal-exit';
import { withDeadline } from './deadline.js';
import { freePort } from './net.js';

/**
 * Where the binary and model were found, or why they cannot be used: `absent` says which is missing, `explicit`
 * that LLAMA_SERVER_BIN or LLAMA_MODEL named a file that is not there (a mistake to report rather than a reason to
 * skip).
 */
export type LlamaServerLocation =
  { bin: string; model: string } | { skip: string; explicit: boolean; absent: 'binary' | 'model' };

/** The repository root, from dist/test/support (compiled) or test/support (source). */
const REPO_ROOT = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  ...(import.meta.url.includes('/dist/') ? ['..'] : []),
);
/** The shared portable build beside the repository, used when LLAMA_SERVER_BIN is unset. */
export const DEFAULT_LLAMA_SERVER_BIN = resolve(REPO_ROOT, '..', 'shared', 'llama-server', 'llama-server');
const DEFAULT_MODEL_NAME = 'tiny-chat.gguf';

/** How to enable the suite, for the one line printed when it is skipped. */
export const ENABLE_HINT =
  'set LLAMA_SERVER_BIN=/path/to/llama-server (and LLAMA_MODEL=/path/to/small-model.gguf unless tiny-chat.gguf sits beside it)';

/**
 * The binary: LLAMA_SERVER_BIN, else `defaultBin` (../shared/llama-server/llama-server beside the repository). The
 * model: LLAMA_MODEL, else tiny-chat.gguf beside the binary.
 */
export function locateLlamaServer(
  env: NodeJS.ProcessEnv = process.env,
  defaultBin = DEFAULT_LLAMA_SERVER_BIN,
): LlamaServerLocation {
  const bin = env.LLAMA_SERVER_BIN || defaultBin;
  if (!existsSync(bin)) {
    const explicit = Boolean(env.LLAMA_SERVER_BIN);
    return {
      explicit,
      absent: 'binary',
      skip: explicit
        ? `LLAMA_SERVER_BIN=${bin} does not exist`
        : `no llama-server binary (LLAMA_SERVER_BIN unset, ${bin} absent)`,
    };
  }
  const model = env.LLAMA_MODEL || join(dirname(bin), DEFAULT_MODEL_NAME);
  if (!existsSync(model)) {
    const explicit = Boolean(env.LLAMA_MODEL);
    return {
      explicit,
      absent: 'model',
      skip: explicit ? `LLAMA_MODEL=${model} does not exist` : `no model (LLAMA_MODEL unset, ${model} absent)`,
    };
  }
  return { bin, model };
}

export interface LaunchOptions {
  bin: string;
  /** Every argument but `--host` and `--port`, which the launcher sets first (loopback, a free port). */
  args: readonly string[];
  /** Deadline for /health 200 after a start (default 30 s). */
  startMs?: number;
  /**
   * What stop (and so restart) sends first: SIGTERM (default; SIGKILL follows after a deadline), or SIGKILL for a
   * crash, where a slot save the server is writing dies with it.
   */
  stopSignal?: 'SIGTERM' | 'SIGKILL';
}

export interface RealServer {
  readonly url: string;
  readonly port: number;
  /** The running server's pid (the leader of its process group); undefined while stopped. */
  pid(): number | undefined;
  /** The server's stdout and stderr since its last start (the last 20,000 characters, for failure messages). */
  output(): string;
  /** Kill it (the stop signal, then SIGKILL after a deadline) and wait for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** Stop, then start again on the same port with the same arguments (so the same save directory). */
  restart(): Promise<void>;
}

/** Every process group started here, killed when this process ends whatever happened (exit or a fatal signal). */
const live = new Set<ChildProcess>();
onExit(() => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

/** Start llama-server on 127.0.0.1 and a free port with `args`; resolves once /health answers 200. */
export async function launchLlamaServer(opts: LaunchOptions): Promise<RealServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Set once: a restart must come back on the same port, where the proxy keeps pointing.
  const args = ['--host', '127.0.0.1', '--port', String(port), ...opts.args];
  let child: ChildProcess | undefined;
  let output = '';

  async function start(): Promise<void> {
    output = '';
    const proc = spawn(opts.bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = proc;
    live.add(proc);
    // Both pipes are read until the end, so that the server never blocks on a full pipe.
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
    proc.once('exit', () => live.delete(proc));
    try {
      await waitHealthy(url, proc, opts.startMs ?? 30_000);
    } catch (err) {
      await stop();
      throw new Error(`${(err as Error).message}\nllama-server ${args.join(' ')}\n${output.slice(-3000)}`);
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((res) => proc.once('exit', () => res()));
    const signal = opts.stopSignal ?? 'SIGTERM';
    killGroup(proc, signal);
    try {
      await withDeadline(exited, 5000, `llama-server to exit after ${signal}`);
    } catch {
      killGroup(proc, 'SIGKILL');
      await withDeadline(exited, 5000, 'llama-server to exit after SIGKILL');
    }
  }

  await start();
  return {
    url,
    port,
    pid: () => child?.pid,
    output: () => output,
    stop,
    async restart() {
      await stop();
      await start();
    },
  };
}

export interface RealServerOptions {
  bin: string;
  /** The model file (plain mode); ignored when `modelsDir` is set. */
  model?: string;
  /** Router mode over the .gguf files in this directory. */
  modelsDir?: string;
  /** Alias reported by /v1/models (plain mode). */
  alias?: string;
  /** `-np`; 'auto' passes none (llama-server then picks 4 slots with a unified KV buffer). */
  slots: number | 'auto';
  /** Context per slot (`-c` = slots × this; with 'auto' the total for 4 slots). */
  ctxPerSlot?: number;
  /** `--slot-save-path`. */
  saveDir: string;
  /** Extra llama-server arguments, last (so they override). LLAMA_SERVER_ARGS from the environment come after. */
  args?: string[];
  /** Deadline for /health 200 after a start. */
  startMs?: number;
}

/** A server for the test:real suite: its flags (one thread, 64 tokens by default, the given slots), then launched. */
export async function startRealServer(opts: RealServerOptions): Promise<RealServer> {
  return launchLlamaServer({ bin: opts.bin, args: suiteArgs(opts), startMs: opts.startMs });
}

function suiteArgs(opts: RealServerOptions): string[] {
  const ctxPerSlot = opts.ctxPerSlot ?? 8192;
  const slots = opts.slots === 'auto' ? 4 : opts.slots;
  // One thread: on a shared CI machine, llama-server's threads waiting on each other cost far more than they win
  // (a 740-token prefill took ~1 s with the default threads under load, ~140 ms with -t 1). LLAMA_SERVER_ARGS
  // comes last and can say otherwise.
  const args = ['--slot-save-path', opts.saveDir, '-c', String(slots * ctxPerSlot), '--jinja', '-n', '64', '-t', '1'];
  if (opts.slots !== 'auto') args.push('-np', String(opts.slots));
  if (opts.modelsDir) args.push('--models-dir', opts.modelsDir);
  else args.push('-m', opts.model!, '-a', opts.alias ?? 'tiny');
  args.push(...(opts.args ?? []));
  const extra = process.env.LLAMA_SERVER_ARGS?.trim();
  if (extra) args.push(...extra.split(/\s+/));
  return args;
}

function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    // detached: the server leads its own process group, which router mode's model children join.
    process.kill(-proc.pid, signal);
  } catch {
    // already gone
  }
}

/** Poll /health until it answers 200, the process exits, or the deadline passes. */
async function waitHealthy(url: string, proc: ChildProcess, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`llama-server exited (${proc.exitCode ?? proc.signalCode}) before /health answered 200`);
    const status = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > end) throw new Error(`llama-server at ${url} not healthy within ${ms} ms (last status ${status})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
