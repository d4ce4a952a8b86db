/**
 * Command-line flags of `npm run sim`: one flag per simulator option, parsed with node:util parseArgs.
 */
import { parseArgs } from 'node:util';
import { ENGINE_KINDS, type EngineKind } from './compute-engine.js';
import { DEFAULT_COST_MODEL, type CostModel } from './cost-model.js';
import type { SimOptions } from './sim-config.js';

const COST_FLAGS: Record<string, keyof CostModel> = {
  'prefill-ms-per-token': 'prefillMsPerToken',
  'decode-ms-per-token': 'decodeMsPerToken',
  'batch-tokens': 'batchTokens',
  'kv-bytes-per-token': 'kvBytesPerToken',
  'save-ms-per-mb': 'saveMsPerMB',
  'restore-ms-per-mb': 'restoreMsPerMB',
  'ram-load-ms-per-mb': 'ramLoadMsPerMB',
  'model-load-ms': 'modelLoadMs',
  'time-scale': 'timeScale',
};

/** `--help` text, with every default. */
export const HELP = `Usage: npm run sim -- [options]

Simulates llama-server, llama-swap or llama-server router mode on loopback (for tests, benchmarks, demos).

  --mode MODE                  llama-server | llama-swap | router            (default llama-server)
  --models A,B                 model ids (llama-server mode uses the first)  (default tiny)
  --n-slots N                  slots per model (-np); leaving it out also means a unified KV buffer (default 4)
  --n-ctx N                    context per slot                              (default 16384)
  --host HOST                                                                (default 127.0.0.1)
  --port N                                                                   (default 8080)
  --slot-save-path DIR         enables slot save/restore; files go there     (default: off, slot actions 501)
  --cache-ram MIB              RAM prompt cache, 0 = off                     (default 8192)
  --no-cache-idle-slots        do not move idle slots to the RAM cache
  --kv-unified | --no-kv-unified  force the unified KV buffer on or off
  --no-slots                   GET /slots answers 501
  --slot-prompt-similarity F   slot choice by prompt similarity              (default 0.1)
  --restore-gives-no-reuse A,B models whose restores give no reuse (sliding-window)
  --reply-text-tokenizes-differently A,B
                               models whose replies' text does not tokenize back to the generated tokens
  --max-running N              llama-swap: models loaded at once             (default 1)
  --models-max N               router: models loaded at once                 (default 4)
  --api-key KEY[,KEY]          keys every request must send (Authorization: Bearer / X-Api-Key), 401 otherwise;
                               /health stays open                            (default: none)
  --engine MODE                shared | per-slot                             (default shared)
                               shared: one main loop and GPU per process: each batch takes --batch-tokens
                               prompt tokens in slot-id order, decodes go in one batch, slot actions stall the
                               other slots;
                               per-slot: every slot computes alone at full speed (the older model)
${Object.entries(COST_FLAGS)
  .map(([flag, key]) => `  --${flag.padEnd(27)}(default ${DEFAULT_COST_MODEL[key]})`)
  .join('\n')}
  -h, --help                   show this help
`;

function num(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new RangeError(`--${flag} must be a number, got '${value}'`);
  return n;
}

/** Parses the flags into simulator options; 'help' when help was asked for. Throws on a bad flag or value. */
export function parseSimArgs(argv: string[]): SimOptions | 'help' {
  const strings = [
    'mode',
    'models',
    'n-slots',
    'n-ctx',
    'host',
    'port',
    'slot-save-path',
    'cache-ram',
    'slot-prompt-similarity',
    'restore-gives-no-reuse',
    'reply-text-tokenizes-differently',
    'max-running',
    'models-max',
    'engine',
    'api-key',
    ...Object.keys(COST_FLAGS),
  ];
  const booleans = ['no-cache-idle-slots', 'kv-unified', 'no-kv-unified', 'no-slots'];
  const { values: v } = parseArgs({
    args: argv,
    options: {
      ...Object.fromEntries(strings.map((s) => [s, { type: 'string' as const }])),
      ...Object.fromEntries(booleans.map((b) => [b, { type: 'boolean' as const }])),
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }) as { values: Record<string, string | boolean | undefined> };
  if (v.help) return 'help';
  const str = (k: string): string | undefined => v[k] as string | undefined;
  const mode = str('mode') ?? 'llama-server';
  if (mode !== 'llama-server' && mode !== 'llama-swap' && mode !== 'router') {
    throw new RangeError(`--mode must be llama-server, llama-swap or router, got '${mode}'`);
  }
  const engine = (str('engine') ?? 'shared') as EngineKind;
  if (!ENGINE_KINDS.includes(engine))
    throw new RangeError(`--engine must be ${ENGINE_KINDS.join(' or ')}, got '${engine}'`);
  const noReuse = new Set((str('restore-gives-no-reuse') ?? '').split(',').filter(Boolean));
  const replyDiffers = new Set((str('reply-text-tokenizes-differently') ?? '').split(',').filter(Boolean));
  const ids = (str('models') ?? 'tiny')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const cost: Partial<CostModel> = {};
  for (const [flag, key] of Object.entries(COST_FLAGS)) {
    const n = num(str(flag), flag);
    if (n !== undefined) cost[key] = n;
  }
  return {
    mode,
    models: ids.map((id) => ({
      id,
      nSlots: num(str('n-slots'), 'n-slots'),
      nCtx: num(str('n-ctx'), 'n-ctx'),
      restoreGivesNoReuse: noReuse.has(id),
      replyTextTokenizesDifferently: replyDiffers.has(id),
    })),
    host: str('host') ?? '127.0.0.1',
    port: num(str('port'), 'port') ?? 8080,
    slotSavePath: str('slot-save-path'),
    cost,
    engine,
    cacheRamMiB: num(str('cache-ram'), 'cache-ram'),
    cacheIdleSlots: v['no-cache-idle-slots'] ? false : undefined,
    kvUnified: v['kv-unified'] ? true : v['no-kv-unified'] ? false : undefined,
    noSlots: v['no-slots'] === true,
    slotPromptSimilarity: num(str('slot-prompt-similarity'), 'slot-prompt-similarity'),
    maxRunning: num(str('max-running'), 'max-running'),
    modelsMax: num(str('models-max'), 'models-max'),
    apiKey: str('api-key'),
  };
}
