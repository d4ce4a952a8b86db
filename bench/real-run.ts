/**
 * `npm run bench -- --real`: every workload against a fresh real llama-server per server mode × workload × config,
 * directly or through proxycache (a child process, as users run it), all in real time. Writes
 * bench/results/real-latest.json; the table and the checks are in real-report.ts.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { calibrate } from './calibrate.js';
import type { Calibration } from './calibrate.js';
import { runWorkload } from './driver.js';
import type { RequestResult, Target } from './driver.js';
import { afterEveryAnswerBytes, idealPrefill, liveCacheBytes, summarize, tokenTotals } from './metrics.js';
import type { ConfigMetrics } from './metrics.js';
import { startProxyProcess } from './proxy-process.js';
import type { ProxyProcess } from './proxy-process.js';
import { REAL_CONFIGS, SERVER_MODES, proxyEnvOf, serverArgs, smallCacheMiB } from './real-configs.js';
import { startBenchServer } from './real-server.js';
import type { LlamaServerBinary } from './real-server.js';
import { realWorkloads } from './real-workloads.js';
import type { RealSize, RealWorkload } from './real-workloads.js';
import { startRelayProcess } from './relay.js';
import type { RelayProcess } from './relay.js';

/** KV bytes per token of the shared tiny model's save files (its VERSION file), when calibration is skipped. */
const DEFAULT_KV_BYTES_PER_TOKEN = 4112;
/** Context per slot of the ideal run: room for the largest conversation. */
const IDEAL_CTX_PER_SLOT = 8192;

export interface RealBenchOptions {
  binary: LlamaServerBinary;
  modes: string[];
  configs: string[];
  workloads: string[];
  size: RealSize;
  sizeName: string;
  out: string;
  /** Calibration samples (0: skip, use the model's documented KV bytes per token). */
  calibrationSamples: number;
  /** Keep every proxy's log here, one file per mode, workload and config. */
  proxyLogDir?: string;
  /**
   * Runs of every config per mode and workload, the configs taking turns (1 by default). Each config then reports
   * its median run by mean time to first token, so that a ratio is not one run's noise.
   */
  repeats?: number;
}

export interface RealConfigMetrics extends ConfigMetrics {
  server_args: string[];
  /** The workload's measured ideal (the ideal run's prefill), repeated here for the ratio. */
  ideal_prefill_tokens: number;
  /** Sum of usage.prompt_tokens: equal to the ideal run's when this config's replies (histories) were the same. */
  prompt_tokens: number;
  /** KV bytes of every conversation's final state in this config. */
  live_cache_bytes: number;
  /**
   * What saving after every answer (the `always` policy's rule) would have written for this run's own answers: each
   * big answer's state (prompt and reply but its last token) at the KV bytes per token, plus a file's header as this
   * run's saves measured it (their bytes less their tokens' KV bytes, per save). Absent where nothing was saved.
   */
  after_every_answer_bytes?: number;
  failed_saves: number;
  failed_restores: number;
  /** The proxy's placements from its logs: resident, restore, cold. */
  decisions: Record<string, number>;
  /** What llama-server wrote (files, sockets, logs; /proc wchar), summed over restarts: a cross-check of bytes_written. */
  server_write_bytes: number;
  /** With --repeat: every run's mean time to first token and prefill, in run order (this record is the median run). */
  repeats?: { ttft_mean_ms: number[]; prefill_tokens: number[] };
}

export interface RealWorkloadResults {
  description: string;
  working_set_tokens_estimate: number;
  small_cache_mib: number;
  /** Prefill of the ideal run: every conversation pinned to a slot of its own, nothing ever evicted or restarted. */
  ideal_prefill_tokens: number;
  ideal_conversation_prefill_tokens: number;
  ideal_prompt_tokens: number;
  /** The simulator's text-level ideal (usage-based, assumes every reply token is reused), for reference. */
  text_ideal_prefill_tokens: number;
  live_cache_bytes: number;
  configs: Record<string, RealConfigMetrics>;
}

export interface RealResults {
  backend: { bin: string; model: string };
  size: string;
  kv_bytes_per_token: number;
  calibration?: Calibration;
  started_at: string;
  wall_s: number;
  modes: Record<string, { description: string; args: string[]; workloads: Record<string, RealWorkloadResults> }>;
}

export async function runRealBench(
  options: RealBenchOptions,
  log: (line: string) => void = console.log,
): Promise<RealResults> {
  const started = performance.now();
  const results: RealResults = {
    backend: { bin: options.binary.bin, model: options.binary.model },
    size: options.sizeName,
    kv_bytes_per_token: DEFAULT_KV_BYTES_PER_TOKEN,
    started_at: new Date().toISOString(),
    wall_s: 0,
    modes: {},
  };
  if (options.calibrationSamples > 0) {
    log('calibrating: prefill, decode, save and restore on a one-slot server …');
    const calibration = await inTempDir('calibrate', (dir) =>
      calibrate(options.binary, dir, { samples: options.calibrationSamples, words: 3800 }),
    );
    results.calibration = calibration;
    results.kv_bytes_per_token = calibration.kv_bytes_per_token;
    log(
      `  prefill ${calibration.prefill_tokens_per_s} tok/s, save ${calibration.save_ms_per_token} ms/token, restore ${calibration.restore_ms_per_token} ms/token, KV ${calibration.kv_bytes_per_token} B/token`,
    );
  }
  if (options.proxyLogDir) await mkdir(options.proxyLogDir, { recursive: true });
  const workloads = realWorkloads(options.size).filter((w) => options.workloads.includes(w.name));
  const ideals: Record<string, Ideal> = {};
  for (const mode of options.modes) {
    const modeResults = { ...SERVER_MODES[mode]!, workloads: {} as Record<string, RealWorkloadResults> };
    results.modes[mode] = modeResults;
    for (const workload of workloads) {
      const ideal = (ideals[workload.name] ??= await measureIdeal(options.binary, workload, log));
      const smallMiB = smallCacheMiB(workload.workingSetTokens, results.kv_bytes_per_token);
      const configs: Record<string, RealConfigMetrics> = {};
      modeResults.workloads[workload.name] = {
        description: workload.description,
        working_set_tokens_estimate: workload.workingSetTokens,
        small_cache_mib: smallMiB,
        ideal_prefill_tokens: ideal.prefill,
        ideal_conversation_prefill_tokens: ideal.conversationPrefill,
        ideal_prompt_tokens: ideal.promptTokens,
        text_ideal_prefill_tokens: ideal.textIdeal,
        live_cache_bytes: liveCacheBytes(workload, ideal.results, results.kv_bytes_per_token),
        configs,
      };
      const repeats = options.repeats ?? 1;
      const runs: Record<string, RealConfigMetrics[]> = {};
      for (let run = 0; run < repeats; run++) {
        for (const config of options.configs) {
          const args = serverArgs(mode, REAL_CONFIGS[config]!, smallMiB);
          const t0 = performance.now();
          const name = `${mode}-${workload.name}-${config}${repeats > 1 ? `-run${run + 1}` : ''}`;
          const logFile = options.proxyLogDir && join(options.proxyLogDir, `${name}.log`);
          // The server's own log beside it, at the level that shows each slot's launch and release (races show there).
          const serverLog = options.proxyLogDir
            ? ['--log-file', join(options.proxyLogDir, `${name}.server.log`), '-lv', '3']
            : [];
          const m = await runConfig(
            options.binary,
            workload,
            config,
            [...args, ...serverLog],
            proxyEnvOf(REAL_CONFIGS[config]!, smallMiB),
            results.kv_bytes_per_token,
            logFile,
          );
          (runs[config] ??= []).push({ ...m, ideal_prefill_tokens: ideal.prefill });
          configs[config] = medianRun(runs[config]);
          await writeResults(options.out, { ...results, wall_s: seconds(started) }); // a long run leaves what it has so far
          const drift =
            m.prompt_tokens === ideal.promptTokens
              ? ''
              : ` (prompts ${m.prompt_tokens - ideal.promptTokens > 0 ? '+' : ''}${m.prompt_tokens - ideal.promptTokens} tokens against the ideal run: other replies)`;
          const kinds =
            m.ttft_small_mean_ms === undefined
              ? ''
              : ` (turns ${Math.round(m.ttft_turn_mean_ms)}, small ${Math.round(m.ttft_small_mean_ms)})`;
          const which = repeats > 1 ? ` (run ${run + 1} of ${repeats})` : '';
          log(
            `[${mode}] ${workload.name} / ${config}${which}: ${((performance.now() - t0) / 1000).toFixed(1)} s, prefill ${(m.prefill_tokens / ideal.prefill).toFixed(3)} × ideal, ttft mean ${Math.round(m.ttft_mean_ms)} ms${kinds}${drift}`,
          );
        }
      }
    }
  }
  results.wall_s = seconds(started);
  await writeResults(options.out, results);
  return results;
}

/**
 * One config's runs as one record: the run with the median mean time to first token (the lower of the two middle
 * ones for an even count), with every run's time to first token and prefill beside it. A single run is itself.
 */
export function medianRun(runs: readonly RealConfigMetrics[]): RealConfigMetrics {
  if (runs.length === 1) return runs[0]!;
  const byTtft = [...runs].sort((a, b) => a.ttft_mean_ms - b.ttft_mean_ms);
  return {
    ...byTtft[Math.floor((byTtft.length - 1) / 2)]!,
    repeats: { ttft_mean_ms: runs.map((r) => r.ttft_mean_ms), prefill_tokens: runs.map((r) => r.prefill_tokens) },
  };
}

async function writeResults(out: string, results: RealResults): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
}

function seconds(since: number): number {
  return Math.round((performance.now() - since) / 100) / 10;
}

/** One fresh llama-server (and proxy) for one workload × config. */
async function runConfig(
  binary: LlamaServerBinary,
  workload: RealWorkload,
  config: string,
  args: string[],
  env: Record<string, string> | undefined,
  kvBytesPerToken: number,
  logFile: string | undefined,
): Promise<Omit<RealConfigMetrics, 'ideal_prefill_tokens'>> {
  return inTempDir(`${workload.name}-${config}`, async (root) => {
    const saveDir = join(root, 'slots');
    await mkdir(saveDir);
    const server = await startBenchServer(binary, saveDir, args);
    let proxy: ProxyProcess | undefined;
    let relay: RelayProcess | undefined;
    try {
      relay = REAL_CONFIGS[config]!.relay && (await startRelayProcess(server.url));
      proxy =
        env &&
        (await startProxyProcess(
          { ...env, LLAMA_URL: server.url, META_DIR: join(root, 'kv_meta'), CACHE_DIR: saveDir },
          { ...(logFile && { logFile }) },
        ));
      const gap = workload.restartGapMs ?? 0;
      const target: Target = {
        url: proxy?.url ?? relay?.url ?? server.url,
        // The workload's idle time after a round, then a crash-like restart: the proxy is not told.
        restart: async () => {
          await sleep(gap);
          await server.restart();
        },
      };
      const started = performance.now();
      const results = await runWorkload(workload, target);
      const wall = performance.now() - started;
      const cpu = proxy ? await proxy.cpuSeconds() : 0;
      const rss = proxy ? await proxy.peakRssMb() : 0;
      await proxy?.stop(); // SIGTERM: a graceful stop, so its shutdown saves are counted and on disk
      const actions = proxy?.slotActions() ?? { saves: 0, restores: 0, bytesWritten: 0, bytesRead: 0 };
      const metrics = summarize(workload, results, actions, 0, wall, { cpu, rss, disk: await dirBytes(saveDir) });
      const afterEveryAnswer = afterEveryAnswerBytes(workload, results, actions, kvBytesPerToken);
      return {
        ...metrics,
        ...extras(workload, results, kvBytesPerToken),
        ...(afterEveryAnswer !== undefined && { after_every_answer_bytes: afterEveryAnswer }),
        server_args: args,
        failed_saves: actions.failedSaves ?? 0,
        failed_restores: actions.failedRestores ?? 0,
        decisions: proxy?.decisions() ?? {},
        server_write_bytes: await server.writtenChars(),
      };
    } finally {
      await proxy?.stop();
      await relay?.stop();
      await server.stop();
    }
  });
}

function extras(workload: RealWorkload, results: RequestResult[], kvBytesPerToken: number) {
  return { prompt_tokens: promptTokens(results), live_cache_bytes: liveCacheBytes(workload, results, kvBytesPerToken) };
}

function promptTokens(results: readonly RequestResult[]): number {
  return results.reduce((sum, r) => sum + r.promptTokens, 0);
}

interface Ideal {
  prefill: number;
  conversationPrefill: number;
  promptTokens: number;
  textIdeal: number;
  results: RequestResult[];
}

/**
 * The least these prompts can cost on this server: the workload once, one request at a time, each conversation
 * pinned to a slot of its own (small requests share one more), no RAM cache, no restart. What a slot can reuse
 * of its previous turn is decided by the server's tokenizer (a reply re-sent as text does not always tokenize back
 * to the tokens generated), so the ideal is measured rather than computed from the text.
 */
async function measureIdeal(
  binary: LlamaServerBinary,
  workload: RealWorkload,
  log: (line: string) => void,
): Promise<Ideal> {
  const slots = workload.conversations.length + 1;
  const index = new Map(workload.conversations.map((c, i) => [c.id, i]));
  const args = ['-np', String(slots), '-c', String(slots * IDEAL_CTX_PER_SLOT), '--cache-ram', '0'];
  const run = { ...workload, concurrency: 1, restartsBefore: [], thinkMs: 0 };
  const results = await inTempDir(`${workload.name}-ideal`, async (dir) => {
    const server = await startBenchServer(binary, dir, args);
    try {
      return await runWorkload(run, {
        url: server.url,
        pin: (job) => (job.kind === 'turn' ? index.get(job.conversation)! : slots - 1),
      });
    } finally {
      await server.stop();
    }
  });
  const totals = tokenTotals(results);
  const ideal = {
    prefill: totals.prefill,
    conversationPrefill: totals.conversation,
    promptTokens: promptTokens(results),
    textIdeal: idealPrefill(workload, results).total,
    results,
  };
  log(`${workload.name}: ideal run prefilled ${ideal.prefill} tokens (text-level ideal ${ideal.textIdeal})`);
  return ideal;
}

async function inTempDir<T>(name: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `proxycache-real-${name}-`));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) total += s.size;
  }
  return total;
}
