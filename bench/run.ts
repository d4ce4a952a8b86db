/**
 * `npm run bench`: runs the workloads against the simulator (or a real backend) directly and through proxycache
 * with the seed's policy and with the default policy, side by side, then prints a table and writes
 * bench/results/latest.json. Times are reported in model time (wall time ÷ time scale) unless the time scale is 0.
 */
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSimulator, DEFAULT_COST_MODEL } from '../src/sim/index.js';
import type { CostModel, SimHandle } from '../src/sim/index.js';
import { runWorkload } from './driver.js';
import type { Target } from './driver.js';
import { idealPrefill, liveCacheBytes, mean, percentile, tokenTotals } from './metrics.js';
import type { ConfigMetrics } from './metrics.js';
import { startProxyProcess } from './proxy-process.js';
import type { ProxyProcess } from './proxy-process.js';
import { printTable, targetChecks } from './report.js';
import { allWorkloads } from './workloads.js';
import type { Workload } from './workloads.js';

const CONFIGS: Record<string, Record<string, string> | null> = {
  direct: null,
  seed: { SAVE_POLICY: 'always' },
  smart: { SAVE_POLICY: 'smart' },
};

const USAGE = `Usage: npm run bench -- [options]
  --workloads LIST    comma list of ${allWorkloads({ startWords: 1, turnWords: 1 }).map((w) => w.name).join(',')} (default all)
  --configs LIST      comma list of ${Object.keys(CONFIGS).join(',')} (default all)
  --time-scale X      wall time per model millisecond (default 0.04; 0 = do not sleep)
  --start-words N     words of a conversation's first message, ~tokens (default 16000)
  --turn-words N      words added per turn (default 450)
  --out FILE          JSON results (default bench/results/latest.json)
  --smoke             tiny sizes and no sleeping: checks that the bench runs (used by the tests)
  -h, --help          this text
Cost model (model time): prefill ${DEFAULT_COST_MODEL.prefillMsPerToken} ms/token, decode ${DEFAULT_COST_MODEL.decodeMsPerToken} ms/token, KV ${DEFAULT_COST_MODEL.kvBytesPerToken} B/token,
save/restore ${1000 / DEFAULT_COST_MODEL.saveMsPerMB / 1000} GB/s, --cache-ram 8192 MiB, 2 slots per model.
`;

interface BenchOptions {
  workloads: string[];
  configs: string[];
  timeScale: number;
  startWords: number;
  turnWords: number;
  out: string;
}

export interface BenchResults {
  cost_model: CostModel & { cache_ram_mib: number; time_scale: number };
  workloads: Record<string, { description: string; ideal_prefill_tokens: number; ideal_conversation_prefill_tokens: number; live_cache_bytes: number; configs: Record<string, ConfigMetrics> }>;
}

/** Run the bench with the given options; returns the results (also written to options.out). */
export async function runBench(options: BenchOptions, log: (line: string) => void = console.log): Promise<BenchResults> {
  const cost: CostModel = { ...DEFAULT_COST_MODEL, timeScale: options.timeScale };
  const results: BenchResults = { cost_model: { ...cost, cache_ram_mib: 8192, time_scale: options.timeScale }, workloads: {} };
  const workloads = allWorkloads({ startWords: options.startWords, turnWords: options.turnWords }).filter((w) => options.workloads.includes(w.name));
  for (const workload of workloads) {
    const configs: Record<string, ConfigMetrics> = {};
    let ideal = { total: 0, conversations: 0 };
    let live = 0;
    for (const config of options.configs) {
      log(`running ${workload.name} / ${config} …`);
      const run = await runConfig(workload, config, cost);
      configs[config] = run.metrics;
      if (!ideal.total) {
        ideal = idealPrefill(workload, run.results);
        live = liveCacheBytes(workload, run.results, cost.kvBytesPerToken);
      }
    }
    results.workloads[workload.name] = {
      description: workload.description,
      ideal_prefill_tokens: ideal.total,
      ideal_conversation_prefill_tokens: ideal.conversations,
      live_cache_bytes: live,
      configs,
    };
  }
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  return results;
}

async function runConfig(workload: Workload, config: string, baseCost: CostModel) {
  const cost = { ...baseCost, ...workload.cost, timeScale: workload.timeScale ?? baseCost.timeScale };
  const root = await mkdtemp(join(tmpdir(), `proxycache-bench-${workload.name}-`));
  const cacheDir = join(root, 'kv_cache');
  const sim = await startSimulator({
    mode: workload.mode,
    models: workload.models.map((id) => ({ id, nSlots: workload.slotsPerModel, nCtx: 65536 })),
    slotSavePath: cacheDir,
    cacheRamMiB: 8192,
    cost,
  });
  const proxyEnv = CONFIGS[config] && {
    ...CONFIGS[config],
    LLAMA_URL: sim.url,
    N_SLOTS: String(workload.slotsPerModel),
    META_DIR: join(root, 'kv_meta'),
    CACHE_DIR: cacheDir,
  };
  let proxy: ProxyProcess | undefined = proxyEnv ? await startProxyProcess(proxyEnv) : undefined;
  let cpu = 0;
  let rss = 0;
  const retireProxy = async () => {
    if (!proxy) return;
    cpu += await proxy.cpuSeconds();
    rss = Math.max(rss, await proxy.peakRssMb());
    await proxy.stop();
  };
  const target: Target = {
    url: proxy?.url ?? sim.url,
    restart: async () => {
      await retireProxy();
      await sim.restart();
      if (proxyEnv) {
        proxy = await startProxyProcess(proxyEnv);
        target.url = proxy.url;
      }
    },
  };
  const started = performance.now();
  try {
    const results = await runWorkload(workload, target);
    const wall = performance.now() - started;
    await retireProxy();
    const metrics = summarize(workload, results, sim, cost.timeScale, wall, { cpu, rss, disk: await dirBytes(cacheDir) });
    return { results, metrics };
  } finally {
    await sim.close();
    await rm(root, { recursive: true, force: true });
  }
}

function summarize(workload: Workload, results: Parameters<typeof tokenTotals>[0], sim: SimHandle, timeScale: number, wallMs: number, proc: { cpu: number; rss: number; disk: number }): ConfigMetrics {
  const toModel = (ms: number) => (timeScale > 0 ? ms / timeScale : ms);
  const ttft = results.map((r) => toModel(r.ttftMs));
  const totals = tokenTotals(results);
  const stats = sim.stats();
  const metrics: ConfigMetrics = {
    prefill_tokens: totals.prefill,
    reused_tokens: totals.reused,
    conversation_prefill_tokens: totals.conversation,
    ttft_mean_ms: round(mean(ttft)),
    ttft_p50_ms: round(percentile(ttft, 50)),
    ttft_p95_ms: round(percentile(ttft, 95)),
    wall_ms: round(toModel(wallMs)),
    saves: stats.saves,
    restores: stats.restores,
    bytes_written: stats.bytesWritten,
    bytes_read: stats.bytesRead,
    disk_bytes_final: proc.disk,
    proxy_cpu_s: round(proc.cpu),
    proxy_rss_mb: round(proc.rss),
  };
  if (workload.name === 'overhead') {
    metrics.latency_p50_ms = round(percentile(results.map((r) => r.totalMs), 50));
    const tokens = results.reduce((a, r) => a + r.completionTokens, 0);
    const streamSeconds = results.reduce((a, r) => a + r.streamMs, 0) / 1000;
    metrics.stream_tokens_per_s = round(streamSeconds > 0 ? tokens / streamSeconds : 0);
  }
  return metrics;
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) total += s.size;
  }
  return total;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workloads: { type: 'string' },
      configs: { type: 'string' },
      'time-scale': { type: 'string' },
      'start-words': { type: 'string' },
      'turn-words': { type: 'string' },
      out: { type: 'string' },
      smoke: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const smoke = values.smoke === true;
  const options: BenchOptions = {
    workloads: values.workloads?.split(',') ?? allWorkloads({ startWords: 1, turnWords: 1 }).map((w) => w.name),
    configs: values.configs?.split(',') ?? Object.keys(CONFIGS),
    timeScale: Number(values['time-scale'] ?? (smoke ? 0 : 0.04)),
    startWords: Number(values['start-words'] ?? (smoke ? 600 : 16000)),
    turnWords: Number(values['turn-words'] ?? (smoke ? 40 : 450)),
    out: values.out ?? 'bench/results/latest.json',
  };
  for (const c of options.configs) if (!(c in CONFIGS)) throw new Error(`unknown config ${c}`);
  const results = await runBench(options);
  printTable(results, console.log);
  for (const line of targetChecks(results)) console.log(line);
  console.log(`\nwritten to ${options.out}`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
