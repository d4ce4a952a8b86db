/**
 * `npm run bench`: runs the workloads against the simulator (or a real backend) directly and through proxycache
 * with the seed's policy and with the default policy, side by side, then prints a table and writes
 * bench/results/latest.json. Times are reported in model time (wall time ÷ time scale) unless the time scale is 0.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_COST_MODEL, costRatioOf, parseCostRatio, withCostRatio } from '../src/sim/index.js';
import type { CostModel, CostRatio } from '../src/sim/index.js';
import { externalBackend, simulatorBackend } from './backend.js';
import type { BackendKind, BackendUnderTest, ExternalBackend, SlotActionCounts } from './backend.js';
import { runWorkload } from './driver.js';
import type { Target } from './driver.js';
import { idealPrefill, liveCacheBytes, summarize } from './metrics.js';
import { agentMetrics } from './agent-metrics.js';
import type { ConfigMetrics } from './metrics.js';
import { startProxyProcess } from './proxy-process.js';
import type { ProxyProcess } from './proxy-process.js';
import { realMain } from './real-cli.js';
import { printTable, targetChecks } from './report.js';
import { allWorkloads } from './workloads.js';
import type { Workload } from './workloads.js';

const CONFIGS: Record<string, Record<string, string> | null> = {
  direct: null,
  seed: { SAVE_POLICY: 'always' },
  smart: { SAVE_POLICY: 'smart' },
};

const USAGE = `Usage: npm run bench -- [options]
  --workloads LIST    comma list of ${allWorkloads({ startWords: 1, turnWords: 1 })
    .map((w) => w.name)
    .join(',')} (default all)
  --configs LIST      comma list of ${Object.keys(CONFIGS).join(',')} (default all)
  --time-scale X      wall time per model millisecond (default 0.04; 0 = do not sleep)
  --ratio LIST        comma list of restore/prefill cost ratios to run at: numbers (save costs the same as
                      restore) or cpu (save and restore as measured on the CPU test server); default 0.1, a GPU.
                      Several: one run each, written to one JSON file keyed by ratio
  --start-words N     words of a conversation's first message, ~tokens (default 16000)
  --turn-words N      words added per turn (default 450)
  --out FILE          JSON results (default bench/results/latest.json)
  --backend URL       run against this server instead of the simulator (real time; restart is skipped, and swap
                      unless the kind is llama-swap with two models); each config first erases its slots
                      (llama-server) or unloads every model (llama-swap)
  --backend-kind K    llama-server (default) or llama-swap
  --models A,B        model names the workloads use on that server (default model-a,model-b)
  --slots N           the server's slot count (-np), to erase them between configs (default 2)
  --slot-save-path D  the server's --slot-save-path, if on this machine: the proxy gets it as CACHE_DIR, the bench
                      measures the files each config wrote there and deletes them afterwards
  --smoke             tiny sizes and no sleeping: checks that the bench runs (used by the tests)
  --real              run against real llama-servers the bench starts itself (\`--real --help\` for its options)
  -h, --help          this text
Cost model (model time): prefill ${DEFAULT_COST_MODEL.prefillMsPerToken} ms/token, decode ${DEFAULT_COST_MODEL.decodeMsPerToken} ms/token, KV ${DEFAULT_COST_MODEL.kvBytesPerToken} B/token,
save and restore at the ratio (0.1: 4 GB/s; 0.2: 2 GB/s), --cache-ram 8192 MiB, 2 slots per model.
`;

interface BenchOptions {
  /** Restore and save cost relative to prefill (default: the default cost model's own, 0.2). */
  ratio?: CostRatio;
  workloads: string[];
  configs: string[];
  timeScale: number;
  startWords: number;
  turnWords: number;
  out: string;
  /** A server the user runs, instead of the simulator. */
  backend?: ExternalBackend;
  /** Model names for the workloads' model-a and model-b. */
  models?: string[];
}

export interface BenchResults {
  /** Restore and save cost per token ÷ prefill cost per token in this run (the simulator only). */
  cost_ratio?: { name: string; restore_to_prefill: number; save_to_prefill: number };
  /** The simulator's cost model, or (against a real server) where it ran. */
  cost_model:
    | (CostModel & { cache_ram_mib: number; time_scale: number })
    | { backend_url: string; backend_kind: BackendKind; time_scale: 1 };
  workloads: Record<
    string,
    {
      description: string;
      ideal_prefill_tokens: number;
      ideal_conversation_prefill_tokens: number;
      live_cache_bytes: number;
      configs: Record<string, ConfigMetrics>;
    }
  >;
}

/** Run the bench with the given options; returns the results (also written to options.out). */
export async function runBench(
  options: BenchOptions,
  log: (line: string) => void = console.log,
): Promise<BenchResults> {
  const base: CostModel = options.ratio ? withCostRatio(DEFAULT_COST_MODEL, options.ratio) : DEFAULT_COST_MODEL;
  const cost: CostModel = { ...base, timeScale: options.backend ? 1 : options.timeScale };
  const ratio = costRatioOf(cost);
  const results: BenchResults = {
    ...(!options.backend && {
      cost_ratio: {
        name: options.ratio?.name ?? 'default',
        restore_to_prefill: round4(ratio.restoreToPrefill),
        save_to_prefill: round4(ratio.saveToPrefill),
      },
    }),
    cost_model: options.backend
      ? { backend_url: options.backend.url, backend_kind: options.backend.kind, time_scale: 1 }
      : { ...cost, cache_ram_mib: 8192, time_scale: options.timeScale },
    workloads: {},
  };
  const all = allWorkloads({ startWords: options.startWords, turnWords: options.turnWords }).filter((w) =>
    options.workloads.includes(w.name),
  );
  for (const workload of all.map((w) => withModelNames(w, options.models))) {
    const skip = options.backend && unsupported(workload, options.backend, options.models);
    if (skip) {
      log(`skipping ${workload.name}: ${skip}`);
      continue;
    }
    const configs: Record<string, ConfigMetrics> = {};
    let ideal = { total: 0, conversations: 0 };
    let live = 0;
    for (const config of options.configs) {
      log(`running ${workload.name} / ${config} …`);
      const run = await runConfig(workload, config, cost, options.backend);
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

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}

/** Why a workload cannot run against this server, if it cannot. */
function unsupported(workload: Workload, backend: ExternalBackend, models: string[] | undefined): string | undefined {
  if (workload.restartsBefore?.length) return 'the bench cannot restart a server it did not start';
  if (workload.mode === 'llama-swap' && backend.kind !== 'llama-swap')
    return 'it needs llama-swap (--backend-kind llama-swap)';
  if (workload.models.length > 1 && (models?.length ?? 0) < 2) return 'it needs two model names (--models A,B)';
  return undefined;
}

/** The workload with its model names replaced (model-a → names[0], model-b → names[1]). */
function withModelNames(workload: Workload, names: string[] | undefined): Workload {
  if (!names?.length) return workload;
  const rename = (model: string) =>
    model === 'model-a' ? names[0]! : model === 'model-b' ? (names[1] ?? model) : model;
  return {
    ...workload,
    models: workload.models.map(rename),
    conversations: workload.conversations.map((c) => ({ ...c, model: rename(c.model) })),
    jobs: workload.jobs.map((j) => (j.kind === 'small' ? { ...j, model: rename(j.model) } : j)),
  };
}

async function runConfig(
  workload: Workload,
  config: string,
  baseCost: CostModel,
  external: ExternalBackend | undefined,
) {
  const cost = {
    ...baseCost,
    ...(external ? {} : workload.cost),
    timeScale: external ? 1 : (workload.timeScale ?? baseCost.timeScale),
  };
  const root = await mkdtemp(join(tmpdir(), `proxycache-bench-${workload.name}-`));
  const metaDir = join(root, 'kv_meta');
  const backend: BackendUnderTest = external
    ? await externalBackend(external)
    : await simulatorBackend(workload, cost, root);
  const proxyEnv = CONFIGS[config] && {
    ...CONFIGS[config],
    LLAMA_URL: backend.url,
    ...(backend.slotsPerModel !== undefined && { N_SLOTS: String(backend.slotsPerModel) }),
    META_DIR: metaDir,
    ...(backend.cacheDir !== undefined && { CACHE_DIR: backend.cacheDir }),
  };
  let proxy: ProxyProcess | undefined = proxyEnv ? await startProxyProcess(proxyEnv) : undefined;
  const usage: { cpu: number; rss: number; actions: SlotActionCounts } = {
    cpu: 0,
    rss: 0,
    actions: { saves: 0, restores: 0, bytesWritten: 0, bytesRead: 0 },
  };
  const retireProxy = async () => {
    if (!proxy) return;
    usage.cpu += await proxy.cpuSeconds();
    usage.rss = Math.max(usage.rss, await proxy.peakRssMb());
    await proxy.stop();
    addCounts(usage.actions, proxy.slotActions());
    proxy = undefined;
  };
  const target: Target = {
    url: proxy?.url ?? backend.url,
    ...(backend.restart && {
      restart: async () => {
        await retireProxy();
        await backend.restart!();
        if (proxyEnv) {
          proxy = await startProxyProcess(proxyEnv);
          target.url = proxy.url;
        }
      },
    }),
  };
  const started = performance.now();
  let ownFiles: string[] = [];
  try {
    const results = await runWorkload(workload, target);
    const wall = performance.now() - started;
    await retireProxy();
    ownFiles = await cacheKeysIn(metaDir);
    // The simulator counts the slot actions itself; what the proxy let go only its logs say.
    const counted = backend.counts();
    const actions = counted
      ? { ...counted, skippedGrowthTokens: usage.actions.skippedGrowthTokens ?? 0 }
      : usage.actions;
    const disk = await backend.diskBytes(ownFiles);
    const metrics = summarize(workload, results, actions, cost.timeScale, wall, {
      cpu: usage.cpu,
      rss: usage.rss,
      disk,
    });
    if (workload.agents) {
      const events = backend.events?.();
      metrics.agents = events ? agentMetrics(workload, results, events) : agentMetrics(workload, results, []);
    }
    return { results, metrics };
  } finally {
    await retireProxy();
    await backend.close(ownFiles);
    await rm(root, { recursive: true, force: true });
  }
}

function addCounts(into: SlotActionCounts, more: SlotActionCounts): void {
  into.saves += more.saves;
  into.restores += more.restores;
  into.bytesWritten += more.bytesWritten;
  into.bytesRead += more.bytesRead;
  into.skippedGrowthTokens = (into.skippedGrowthTokens ?? 0) + (more.skippedGrowthTokens ?? 0);
  into.replayPrefillTokens = (into.replayPrefillTokens ?? 0) + (more.replayPrefillTokens ?? 0);
}

/** The cache keys a config's proxy has metas for: the slot files it wrote and kept. */
async function cacheKeysIn(metaDir: string): Promise<string[]> {
  const names = await readdir(metaDir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.meta.json')).map((n) => n.slice(0, -'.meta.json'.length));
}

function externalOption(values: Record<string, string | boolean | undefined>): ExternalBackend {
  const kind = String(values['backend-kind'] ?? 'llama-server');
  if (kind !== 'llama-server' && kind !== 'llama-swap')
    throw new Error(`--backend-kind must be llama-server or llama-swap, not ${kind}`);
  const slots = Number(values.slots ?? 2);
  if (!Number.isInteger(slots) || slots < 1)
    throw new Error(`--slots must be a positive integer, not ${String(values.slots)}`);
  const path = values['slot-save-path'];
  return {
    url: String(values.backend).replace(/\/+$/, ''),
    kind,
    slots,
    ...(typeof path === 'string' && { slotSavePath: path }),
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--real')) return realMain(process.argv.slice(2));
  const { values } = parseArgs({
    options: {
      workloads: { type: 'string' },
      configs: { type: 'string' },
      'time-scale': { type: 'string' },
      ratio: { type: 'string' },
      'start-words': { type: 'string' },
      'turn-words': { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
      'backend-kind': { type: 'string' },
      models: { type: 'string' },
      slots: { type: 'string' },
      'slot-save-path': { type: 'string' },
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
    ...(values.backend !== undefined && { backend: externalOption(values) }),
    ...(values.models !== undefined && { models: values.models.split(',') }),
  };
  for (const c of options.configs) if (!(c in CONFIGS)) throw new Error(`unknown config ${c}`);
  const ratios = options.backend ? [undefined] : (values.ratio ?? '0.1').split(',').map(parseCostRatio);
  const runs: Record<string, BenchResults> = {};
  for (const ratio of ratios) {
    if (ratio)
      console.log(
        `\n##### cost ratio ${ratio.name}: restore/prefill ${ratio.restoreToPrefill.toFixed(4)}, save/prefill ${ratio.saveToPrefill.toFixed(4)}`,
      );
    const results = await runBench({
      ...options,
      ...(ratio && { ratio }),
      ...(ratios.length > 1 && { out: `${options.out}.part` }),
    });
    runs[ratio?.name ?? 'backend'] = results;
    printTable(results, console.log);
    for (const line of targetChecks(results)) console.log(line);
  }
  if (ratios.length > 1) {
    await writeFile(options.out, `${JSON.stringify({ ratios: runs }, null, 2)}\n`);
    await rm(`${options.out}.part`, { force: true });
  }
  console.log(`\nwritten to ${options.out}`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
