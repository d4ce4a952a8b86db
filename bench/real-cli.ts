/** `npm run bench -- --real [options]`: the options of the real bench, then the run, the tables and the checks. */
import { parseArgs } from 'node:util';
import { DEFAULT_MODES, REAL_CONFIGS, SERVER_MODES } from './real-configs.js';
import { printRealTables, realTargetChecks } from './real-report.js';
import { runRealBench } from './real-run.js';
import { findLlamaServer } from './real-server.js';
import { FULL_SIZE, QUICK_SIZE, realWorkloads } from './real-workloads.js';

const WORKLOADS = realWorkloads(FULL_SIZE).map((w) => w.name);

const USAGE = `Usage: npm run bench -- --real [options]
Runs the workloads against a fresh real llama-server per server mode × workload × config (binary from
LLAMA_SERVER_BIN, else ../shared/llama-server/llama-server; model tiny-chat.gguf beside it or LLAMA_MODEL).
  --quick             smaller conversations, fewer turns and rounds (about a third of the time)
  --modes LIST        comma list of ${Object.keys(SERVER_MODES).join(',')} (default ${DEFAULT_MODES.join(',')})
  --configs LIST      comma list of ${Object.keys(REAL_CONFIGS).join(',')} (default all)
  --workloads LIST    comma list of ${WORKLOADS.join(',')} (default all)
  --gap-seconds S     idle time before each restart in the restart workload (default 5)
  --stop STR          send stop: [STR] with every request: replies then end early where nobody can foresee it,
                      as a real model's end of generation does (the tiny model otherwise runs to max_tokens)
  --think-ms N        each client pauses N ms after every answer before its next request (a tool running, a
                      user reading; default 0: back to back), in every workload but overhead
  --calibration-samples N  samples of the cost measurement before the run (default 5; 0 = skip)
  --repeat N          run every config N times per mode and workload, the configs taking turns, and report each
                      config's median run by mean time to first token (default 1; times here move by ±10 %)
  --out FILE          JSON results (default bench/results/real-latest.json)
  --proxy-logs DIR    keep every proxy's log lines in DIR (MODE-WORKLOAD-CONFIG.log), and each llama-server's
                      own log at verbosity 3 beside them (MODE-WORKLOAD-CONFIG.server.log)
  -h, --help          this text
`;

export async function realMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      real: { type: 'boolean' },
      quick: { type: 'boolean' },
      modes: { type: 'string' },
      configs: { type: 'string' },
      workloads: { type: 'string' },
      'gap-seconds': { type: 'string' },
      stop: { type: 'string' },
      'think-ms': { type: 'string' },
      'calibration-samples': { type: 'string' },
      repeat: { type: 'string' },
      out: { type: 'string' },
      'proxy-logs': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const binary = findLlamaServer();
  if ('missing' in binary) throw new Error(binary.missing);
  const list = (value: string | undefined, all: string[], what: string, byDefault = all) => {
    const items = value?.split(',') ?? byDefault;
    for (const item of items)
      if (!all.includes(item)) throw new Error(`unknown ${what} ${item} (one of ${all.join(', ')})`);
    return items;
  };
  const base = values.quick ? QUICK_SIZE : FULL_SIZE;
  const gap = Number(values['gap-seconds'] ?? base.restartGapMs / 1000);
  const samples = Number(values['calibration-samples'] ?? 5);
  if (!(gap >= 0)) throw new Error(`--gap-seconds must be a number >= 0, not ${values['gap-seconds']}`);
  if (!Number.isInteger(samples) || samples < 0)
    throw new Error(`--calibration-samples must be an integer >= 0, not ${values['calibration-samples']}`);
  const repeats = Number(values.repeat ?? 1);
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new Error(`--repeat must be an integer >= 1, not ${values.repeat}`);
  if (values.stop === '') throw new Error('--stop needs a non-empty string');
  const stop = values.stop;
  const thinkMs = Number(values['think-ms'] ?? 0);
  if (!Number.isInteger(thinkMs) || thinkMs < 0)
    throw new Error(`--think-ms must be an integer >= 0, not ${values['think-ms']}`);
  const out = values.out ?? 'bench/results/real-latest.json';
  const results = await runRealBench({
    binary,
    modes: list(values.modes, Object.keys(SERVER_MODES), 'mode', DEFAULT_MODES),
    configs: list(values.configs, Object.keys(REAL_CONFIGS), 'config'),
    workloads: list(values.workloads, WORKLOADS, 'workload'),
    size: { ...base, restartGapMs: gap * 1000, ...(stop !== undefined && { stop }), ...(thinkMs > 0 && { thinkMs }) },
    sizeName: `${values.quick ? 'quick' : 'full'}${stop !== undefined ? `, stop ${JSON.stringify(stop)}` : ''}${thinkMs > 0 ? `, think ${thinkMs} ms` : ''}${repeats > 1 ? `, median of ${repeats} runs` : ''}`,
    out,
    calibrationSamples: samples,
    repeats,
    ...(values['proxy-logs'] !== undefined && { proxyLogDir: values['proxy-logs'] }),
  });
  printRealTables(results, console.log);
  for (const line of realTargetChecks(results)) console.log(line);
  console.log(`\nwall ${results.wall_s} s; written to ${out}`);
  console.log('Absolute times depend on the machine and on what else runs on it: compare configs within one run.');
}
