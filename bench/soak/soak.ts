/**
 * One soak run: the simulator and the proxy as child processes on loopback, chat clients and a fuzzer against the
 * proxy for a fixed time, the backend killed and started again in the middle, then the proxy is drained, asked
 * for a final health check and chat, stopped, and its directories are checked. Returns every measurement and the
 * checks (`checks.ts`); nothing here decides whether the run passed.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { words } from '../../test/support/text.js';
import { startProxyProcess } from '../proxy-process.js';
import type { ProxyProcess } from '../proxy-process.js';
import { createChatClient, oneChat, runChatClients } from './chat-clients.js';
import type { ChatOutcome } from './chat-clients.js';
import { evaluate } from './checks.js';
import type { SoakReport } from './checks.js';
import { checkConsistency } from './consistency.js';
import { runFuzzer } from './fuzzer.js';
import type { FuzzOutcome } from './fuzzer.js';
import type { LagSample } from './lag-probe.js';
import { procSnapshot } from './proc-stats.js';
import type { ProcSnapshot } from './proc-stats.js';
import { restingAfter, restingBaseline } from './settle.js';
import { emptyLogSummary, noteLogLine } from './proxy-log.js';
import { startSimProcess } from './sim-process.js';
import type { SimProcess } from './sim-process.js';

export interface SoakOptions {
  /** Seconds of load. */
  durationS: number;
  clients: number;
  slots: number;
  /** Seconds into the load when the backend is killed; undefined: no restart. */
  restartAtS: number | undefined;
  /** How long the backend stays down before it is started again. */
  downMs: number;
  /** A chat or fuzz request with no answer after this long is lost. */
  deadlineMs: number;
  /** Words of a conversation's first message (the proxy's BIG_THRESHOLD_WORDS is 500). */
  bigWords: { min: number; max: number };
  /** The simulator's wall milliseconds per model millisecond. */
  timeScale: number;
  seed: number;
  /** Fuzz cases to leave out, by name. */
  skipFuzz: ReadonlySet<string>;
  /** Progress lines. */
  log: (line: string) => void;
}

const LAG_PROBE = fileURLToPath(new URL('./lag-probe.js', import.meta.url));
/** Above any request deadline: a slot wait never ends in a 503; a leaked slot shows as requests lost at their deadline. */
const ACQUIRE_TIMEOUT_S = 120;
const SETTLE_DEADLINE_MS = 12_000;
const SHUTDOWN_DEADLINE_MS = 30_000;
const SAMPLE_MS = 500;

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const root = await mkdtemp(join(tmpdir(), 'proxycache-soak-'));
  const metaDir = join(root, 'kv_meta');
  const cacheDir = join(root, 'kv_cache');
  const lagFile = join(root, 'lag.jsonl');
  const logSummary = emptyLogSummary();
  let sim: SimProcess | undefined;
  let proxy: ProxyProcess | undefined;
  try {
    sim = await startSimProcess([
      '--n-slots',
      String(opts.slots),
      '--slot-save-path',
      cacheDir,
      '--cache-ram',
      '0',
      '--n-ctx',
      '32768',
      '--time-scale',
      String(opts.timeScale),
      '--model-load-ms',
      '10000',
    ]);
    proxy = await startProxyProcess(
      {
        LLAMA_URL: sim.url,
        N_SLOTS: String(opts.slots),
        META_DIR: metaDir,
        CACHE_DIR: cacheDir,
        // A budget below the working set and a cleanup every 3 s: deletions race with saves and restores.
        CACHE_MAX_SIZE_GB: '20',
        CACHE_CLEANUP_INTERVAL_MINUTES: '0.05',
        ACQUIRE_TIMEOUT: String(ACQUIRE_TIMEOUT_S),
        REQUEST_TIMEOUT: '30',
        CONNECT_TIMEOUT: '2',
        IDLE_SAVE_SECONDS: '2',
        // Client limits (issue item 3): short deadlines so that the fuzzer's stalled clients get their 408 quickly.
        MAX_BODY_MB: '32',
        CLIENT_HEADERS_TIMEOUT: '2',
        CLIENT_BODY_TIMEOUT: '2',
        SOAK_LAG_FILE: lagFile,
      },
      { nodeArgs: ['--expose-gc', '--import', LAG_PROBE], onLog: (entry) => noteLogLine(logSummary, entry) },
    );
    const { url, pid } = proxy;
    opts.log(
      `proxy ${url} (pid ${pid}) in front of the simulator ${sim.url}; ${opts.clients} clients on ${opts.slots} slots for ${opts.durationS} s`,
    );

    await warmUp(url, opts);
    const baseline = await restingBaseline(pid, lagFile);

    const chats: ChatOutcome[] = [];
    const fuzz: FuzzOutcome[] = [];
    const probe: number[] = [];
    const timeline: Array<ProcSnapshot & { t: number }> = [];
    const driverLag = monitorEventLoopDelay({ resolution: 10 });
    driverLag.enable();
    const loadStart = Date.now();
    const until = loadStart + opts.durationS * 1000;
    const sampler = setInterval(() => {
      procSnapshot(pid).then(
        (s) => timeline.push({ t: Date.now(), ...s }),
        () => undefined,
      );
    }, SAMPLE_MS);
    const restart =
      opts.restartAtS === undefined
        ? Promise.resolve(undefined)
        : restartBackend(sim, loadStart + opts.restartAtS * 1000, opts);
    await Promise.all([
      runChatClients({
        url,
        clients: opts.clients,
        until,
        deadlineMs: opts.deadlineMs,
        bigWords: opts.bigWords,
        seed: opts.seed,
        onOutcome: (o) => chats.push(o),
      }),
      runFuzzer({
        url,
        until,
        onceAt: loadStart + opts.durationS * 250,
        deadlineMs: opts.deadlineMs,
        gapMs: 25,
        workers: 2,
        skip: opts.skipFuzz,
        onOutcome: (o) => fuzz.push(o),
      }),
      probeLatency(url, until, probe),
      restart,
    ]);
    const loadEnd = Date.now();
    clearInterval(sampler);
    driverLag.disable();
    opts.log(
      `load done: ${chats.length} chats, ${fuzz.length} fuzz requests in ${((loadEnd - loadStart) / 1000).toFixed(1)} s`,
    );
    if (!proxy.alive()) throw new Error('the proxy process exited during the load (see its log)');

    // Drained: every slot free again (a leaked slot or a deadlock shows here), sockets closed, memory settled.
    const drained = await poll(
      async () => ((await health(url)).body?.slots?.busy === 0 ? true : undefined),
      SETTLE_DEADLINE_MS,
    );
    const after = await restingAfter(pid, lagFile, baseline.fds, SETTLE_DEADLINE_MS);
    const finalHealth = await health(url);
    const finalChat = await finalChatRequest(url, opts.deadlineMs);
    const indexMatches = await poll(async () => {
      const entries = (await health(url)).body?.cache_entries;
      const { metas } = await checkConsistency(metaDir, cacheDir);
      return entries === metas ? true : undefined;
    }, 5000);
    const alive = proxy.alive();
    const stopStarted = Date.now();
    const stopped = await stopProxy(proxy, SHUTDOWN_DEADLINE_MS);
    const shutdownMs = Date.now() - stopStarted;
    proxy = undefined;
    const consistency = await checkConsistency(metaDir, cacheDir);

    return evaluate({
      options: { ...opts, skipFuzz: [...opts.skipFuzz] },
      loadStart,
      loadEnd,
      restart: await restart,
      chats,
      fuzz,
      probeMs: probe,
      driverLagMs: {
        p50: lagMs(driverLag.percentile(50)),
        p99: lagMs(driverLag.percentile(99)),
        max: lagMs(driverLag.max),
      },
      lag: await readLag(lagFile),
      proc: { baseline, after, timeline },
      drained: drained === true,
      finalHealth: finalHealth.status,
      finalChat,
      indexMatches: indexMatches === true,
      alive,
      shutdown: { ok: stopped, ms: shutdownMs },
      consistency,
      proxyLog: logSummary,
    });
  } finally {
    if (proxy) await stopProxy(proxy, SHUTDOWN_DEADLINE_MS);
    await sim?.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

/** A few requests of every kind, one after another, so that the baseline is taken from a warm process. */
async function warmUp(url: string, opts: SoakOptions): Promise<void> {
  await runChatClients({
    url,
    clients: 4,
    until: Date.now() + 1500,
    deadlineMs: opts.deadlineMs,
    bigWords: opts.bigWords,
    seed: opts.seed + 1,
    onOutcome: () => undefined,
  });
}

/** Kill the backend at `at`, start it again `downMs` later; the window in which requests may fail because of it. */
async function restartBackend(
  sim: SimProcess,
  at: number,
  opts: SoakOptions,
): Promise<{ killAt: number; readyAt: number }> {
  await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
  const killAt = Date.now();
  await sim.kill();
  opts.log(`backend killed (SIGKILL) at +${((killAt - at) / 1000 + (opts.restartAtS ?? 0)).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, opts.downMs));
  await sim.start();
  const readyAt = Date.now();
  opts.log(`backend listening again on the same port after ${readyAt - killAt} ms`);
  return { killAt, readyAt };
}

/**
 * Event-loop lag seen from outside: the latency of a request the proxy answers itself (a chat body it rejects
 * with 400), four times a second. It includes loopback and this process's own lag (reported apart).
 */
async function probeLatency(url: string, until: number, out: number[]): Promise<void> {
  while (Date.now() < until) {
    const started = performance.now();
    try {
      const res = await request(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      await res.body.dump();
      out.push(performance.now() - started);
    } catch {
      out.push(Infinity);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface HealthAnswer {
  status: number;
  body?: { slots?: { busy?: number }; cache_entries?: number };
}

async function health(url: string): Promise<HealthAnswer> {
  try {
    const res = await request(`${url}/health`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
    return { status: res.statusCode, body: (await res.body.json()) as HealthAnswer['body'] };
  } catch {
    return { status: 0 };
  }
}

/** One more big chat after the soak, with the official client: it must be answered. */
async function finalChatRequest(url: string, deadlineMs: number): Promise<{ ok: boolean; ms: number; error?: string }> {
  const client = createChatClient(url, deadlineMs);
  try {
    const messages = [{ role: 'user' as const, content: words(700, 424242) }];
    const { outcome: o } = await oneChat(client.openai, messages, {
      client: -1,
      big: true,
      stream: false,
      cutAfterChunks: undefined,
      deadlineMs,
      maxTokens: 8,
    });
    return {
      ok: o.result === 'answered',
      ms: o.endedAt - o.startedAt,
      ...(o.result !== 'answered' && { error: `${o.result} ${o.status ?? ''} ${o.code ?? ''}`.trim() }),
    };
  } finally {
    await client.close();
  }
}

async function readLag(file: string): Promise<LagSample[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LagSample);
}

/** Lag in ms from the driver's own delay histogram (resolution 10 ms, which the histogram includes). */
function lagMs(ns: number): number {
  return Math.max(0, Math.round(ns / 1e4 - 1000) / 100);
}

async function poll<T>(check: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM and wait for the exit; false (and SIGKILL) when the proxy has not exited within `ms`. */
async function stopProxy(proxy: ProxyProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const stopping = proxy.stop();
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    const stopped = await Promise.race([stopping.then(() => true), timeout]);
    if (!stopped) {
      process.kill(proxy.pid, 'SIGKILL');
      await stopping;
    }
    return stopped;
  } finally {
    clearTimeout(timer);
  }
}
