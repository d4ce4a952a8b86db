/**
 * The simulator's options and how they become the start-up configuration of each simulated llama-server
 * process (the flags it would have been started with).
 */
import { parseApiKeys } from './api-key.js';
import { ENGINE_KINDS, type EngineKind } from './compute-engine.js';
import { resolveCostModel, type CostModel } from './cost-model.js';
import type { InstanceConfig } from './model-instance.js';

/** One model. */
export interface SimModelOptions {
  /** llama-swap / router model name; also the `-a` alias unless `alias` says otherwise. */
  id: string;
  /** `-m` path (default `/models/{id}.gguf`). */
  path?: string;
  /** `-a` alias (default: the id); null = started without alias, so the server reports the path. */
  alias?: string | null;
  /** `-np` (default 4; leaving it out also makes the KV buffer unified, like the real default). */
  nSlots?: number;
  /** Context per slot (default 16384). */
  nCtx?: number;
  /** Model file size for `/v1/models` meta (default 115902464). */
  sizeBytes?: number;
  /** Default 'F16'. */
  ftype?: string;
  /** Sliding-window / recurrent model: restores succeed but give cache_n 0. */
  restoreGivesNoReuse?: boolean;
  /**
   * A reply's text does not tokenize back to the tokens the model generated (as the real bench's random-weight
   * model's): a prompt carrying the reply reuses its slot or a RAM-cache entry up to the reply only.
   */
  replyTextTokenizesDifferently?: boolean;
}

/** How to start a simulator. */
export interface SimOptions {
  mode: 'llama-server' | 'llama-swap' | 'router';
  /** llama-server mode uses models[0]. */
  models: SimModelOptions[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** `--slot-save-path`; undefined = slot actions answer 501. */
  slotSavePath?: string;
  cost?: Partial<CostModel>;
  /**
   * How a process's slots share its compute: 'shared' (default) = one main loop and GPU, as llama-server has
   * (prefills share batches, decodes are batched, slot actions stall the other slots); 'per-slot' = every slot
   * computes on its own at full speed (the simulator's earlier model).
   */
  engine?: EngineKind;
  /** `--cache-ram` MiB (default 8192; 0 = off). */
  cacheRamMiB?: number;
  /** `--cache-idle-slots` (default true). */
  cacheIdleSlots?: boolean;
  /** `-kvu`; default true exactly when a model's nSlots is not given. */
  kvUnified?: boolean;
  /** `--no-slots`: `GET /slots` answers 501. */
  noSlots?: boolean;
  /** `--slot-prompt-similarity` (default 0.10). */
  slotPromptSimilarity?: number;
  /** llama-swap: models running at once (default 1 = every switch is a swap). */
  maxRunning?: number;
  /** router `--models-max` (default 4). */
  modelsMax?: number;
  /** `--api-key`: a key or a comma list of keys every model process demands (api-key.ts); unset = none. */
  apiKey?: string;
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1, got ${String(value)}`);
  return v;
}

/** Validates the options and builds one InstanceConfig per model (throws RangeError naming the bad option). */
export function instanceConfigs(options: SimOptions): InstanceConfig[] {
  if (!Array.isArray(options.models) || options.models.length === 0)
    throw new RangeError('models must list at least one model');
  const cost = resolveCostModel(options.cost);
  const cacheRamMiB = options.cacheRamMiB ?? 8192;
  if (!(cacheRamMiB >= 0)) throw new RangeError(`cacheRamMiB must be >= 0, got ${cacheRamMiB}`);
  const similarity = options.slotPromptSimilarity ?? 0.1;
  if (!(similarity >= 0 && similarity <= 1))
    throw new RangeError(`slotPromptSimilarity must be in 0..1, got ${similarity}`);
  const engine = options.engine ?? 'shared';
  if (!ENGINE_KINDS.includes(engine))
    throw new RangeError(`engine must be ${ENGINE_KINDS.join(' or ')}, got ${String(engine)}`);
  const seen = new Set<string>();
  return options.models.map((m, i) => {
    if (typeof m.id !== 'string' || m.id === '') throw new RangeError(`models[${i}].id must be a non-empty string`);
    if (seen.has(m.id)) throw new RangeError(`models[${i}].id '${m.id}' appears twice`);
    seen.add(m.id);
    return {
      id: m.id,
      alias: m.alias === null ? undefined : (m.alias ?? m.id),
      path: m.path ?? `/models/${m.id}.gguf`,
      nSlots: positiveInt(m.nSlots, 4, `models[${i}].nSlots`),
      nCtx: positiveInt(m.nCtx, 16384, `models[${i}].nCtx`),
      sizeBytes: m.sizeBytes ?? 115902464,
      ftype: m.ftype ?? 'F16',
      restoreGivesNoReuse: m.restoreGivesNoReuse ?? false,
      replyTextTokenizesDifferently: m.replyTextTokenizesDifferently ?? false,
      slotSavePath: options.slotSavePath,
      cacheRamMiB,
      cacheIdleSlots: options.cacheIdleSlots ?? true,
      kvUnified: options.kvUnified ?? m.nSlots === undefined,
      noSlots: options.noSlots ?? false,
      similarity,
      cost,
      engine,
      apiKeys: parseApiKeys(options.apiKey),
    };
  });
}
