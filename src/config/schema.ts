/**
 * Every configuration variable in one table (name, default, description, schema) and the zod schema that turns
 * the raw strings into the typed `Config`. Names and defaults of the seed's variables are kept unchanged.
 */
import { z } from 'zod';
import { BACKEND_TYPES, backendsList } from './backends.js';
import type { BackendType } from './backends.js';
import { apiKeyList, singleApiKey } from './keys.js';
import { decimal, httpUrl, integer, nonEmpty, oneOf, optionalText } from './values.js';

export const SAVE_POLICIES = ['always', 'smart'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type SavePolicy = (typeof SAVE_POLICIES)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

interface VariableDef {
  /** The value used when neither the environment nor a flag sets it; '' = unset. */
  default: string;
  description: string;
  schema: z.ZodType<unknown, string | undefined>;
}

function def<S extends z.ZodType<unknown, string | undefined>>(defaultValue: string, schema: S, description: string) {
  return { default: defaultValue, schema, description };
}

const DEFS = {
  LLAMA_URL: def(
    'http://127.0.0.1:8000',
    httpUrl(),
    'Backend URL (llama-server, llama-swap or router); ignored when BACKENDS is set',
  ),
  N_SLOTS: def(
    '2',
    integer(1),
    "Slots per backend (integer >= 1); unset: the server's /props total_slots (2 until it answers)",
  ),
  BACKENDS: def(
    '',
    backendsList(),
    'JSON list [{"url":"...","n_slots":N,"type":"...","cache_ram_mib":M}]; replaces LLAMA_URL and N_SLOTS ' +
      '(n_slots defaults to N_SLOTS, type to BACKEND_TYPE, cache_ram_mib to SERVER_CACHE_RAM_MIB)',
  ),
  BACKEND_TYPE: def(
    'auto',
    oneOf(BACKEND_TYPES),
    `Backend kind: ${BACKEND_TYPES.join(', ')} (auto = probe at start-up)`,
  ),
  BACKEND_API_KEY: def(
    '',
    singleApiKey(),
    'Key sent as "Authorization: Bearer KEY" on every backend call (llama-server --api-key), replacing any client credential (see Keys): a key or @/path/to/file; unset: none',
  ),
  HOST: def('0.0.0.0', nonEmpty(), 'Address proxycache listens on'),
  PORT: def('8081', integer(0, 65535), 'Port proxycache listens on (0 = any free port)'),
  MAX_BODY_MB: def(
    '32',
    decimal(0, { minExclusive: true }),
    'Largest request body accepted, in MB of 1024^2 bytes; larger ones get 413 (> 0)',
  ),
  CLIENT_HEADERS_TIMEOUT: def(
    '30',
    decimal(0, { minExclusive: true }),
    'Seconds a client has to send its request headers before the connection is closed with 408 (> 0)',
  ),
  CLIENT_BODY_TIMEOUT: def(
    '120',
    decimal(0, { minExclusive: true }),
    'Seconds a client has to send its request body: the whole request must arrive within CLIENT_HEADERS_TIMEOUT + this, else 408 (> 0)',
  ),
  API_KEYS: def(
    '',
    apiKeyList(),
    'Keys clients must send as "Authorization: Bearer KEY" or "x-api-key: KEY", else 401 (/health stays open; see Keys): key1,key2 or @/path/to/file with one key per line; unset: no check',
  ),
  META_DIR: def('./kv_meta', nonEmpty(), 'Directory for .meta.json files'),
  MODEL_ID: def('llama.cpp', nonEmpty(), 'Model used when a request names none'),
  BIG_THRESHOLD_WORDS: def('500', integer(0), 'Min words to trigger caching (integer >= 0)'),
  WORDS_PER_BLOCK: def('100', integer(1), 'Words per block for LCP matching (integer >= 1)'),
  LCP_TH: def('0.6', decimal(0, { max: 1 }), 'LCP similarity threshold (0-1)'),
  REQUEST_TIMEOUT: def('600', decimal(0, { minExclusive: true }), 'HTTP timeout towards the backend in seconds (> 0)'),
  CONNECT_TIMEOUT: def(
    '5',
    decimal(0, { minExclusive: true }),
    'Seconds to connect to a backend before answering 502 (> 0)',
  ),
  ACQUIRE_TIMEOUT: def(
    '300',
    decimal(0, { minExclusive: true }),
    'Seconds to wait for a free slot before answering 503 (> 0)',
  ),
  CACHE_DIR: def(
    '',
    optionalText(),
    'llama.cpp --slot-save-path directory, for cleanup and for deleting superseded files (smart); empty = both off',
  ),
  CACHE_MAX_AGE_HOURS: def('168', decimal(0), 'Delete cache files older than this many hours (0 = disabled)'),
  CACHE_MAX_SIZE_GB: def(
    '50',
    decimal(0),
    'Max total cache size in GB of 1024^3 bytes, oldest files deleted first (0 = disabled)',
  ),
  CACHE_CLEANUP_INTERVAL_MINUTES: def(
    '60',
    decimal(0, { minExclusive: true }),
    'Cleanup check interval in minutes (> 0)',
  ),
  SAVE_POLICY: def(
    'smart',
    oneOf(SAVE_POLICIES),
    'When to save a slot: smart (only what would be lost: before eviction, before a model swap, on shutdown) or always (the seed: after every big request)',
  ),
  SAVE_MIN_NEW_TOKENS: def(
    '0',
    integer(0),
    'smart policy: never re-save a conversation that grew by fewer tokens (a floor against rewriting big files for little growth); above it, only when cheaper than prefilling the growth again (integer >= 0)',
  ),
  IDLE_SAVE_SECONDS: def(
    '2',
    decimal(0),
    "smart policy: the loss window. Each answer's new state is saved in the backend's idle time after it (write-behind), at the latest this many seconds later, unless the conversation continued first; an answer left to the server's RAM cache (see SERVER_CACHE_RAM_MIB) is saved from there shortly before then (0 = off: save only at eviction, model swap and shutdown)",
  ),
  SERVER_CACHE_RAM_MIB: def(
    '8192',
    integer(-1),
    "The --cache-ram (MiB) of the llama-server behind the proxy, llama-server's default 8192 unless you pass another (-1 = no limit, 0 = off). A conversation its RAM cache still holds comes back from there (sent without a pin where the server clears idle slots, its default configuration; pinned to a slot holding another prompt where it keeps them, -np N) and is restored from disk only when that cache cannot have it; a value too high is lowered by the first miss (integer >= -1)",
  ),
  SHUTDOWN_TIMEOUT_SECONDS: def(
    '30',
    decimal(0, { minExclusive: true }),
    'Longest a shutdown takes (> 0): answers in progress get a third of it, then the saves; what still runs at the end is aborted and logged',
  ),
  LOG_LEVEL: def(
    'info',
    oneOf(LOG_LEVELS, { warning: 'warn', critical: 'fatal' }),
    `Log level: ${LOG_LEVELS.join(', ')} (case-insensitive)`,
  ),
  LOG_FORMAT: def(
    'json',
    oneOf(LOG_FORMATS),
    'Log lines: json (one JSON object per line, for machines) or pretty (coloured, one readable line per event, for a terminal)',
  ),
  ADMIN_TOKEN: def(
    '',
    optionalText(),
    'Bearer token for the status and admin API under /proxycache/ (Authorization: Bearer, or ?token= for the dashboard); unset: that API answers only to clients on loopback',
  ),
} satisfies Record<string, VariableDef>;

/** Variables whose inline values are secrets: an error message never shows them (see keys.ts). */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set(['API_KEYS', 'BACKEND_API_KEY']);

/** The name of a configuration environment variable, e.g. `'LLAMA_URL'`. */
export type VariableName = keyof typeof DEFS;

/** One documented configuration variable: env name, CLI flag, Config field, default ('' = unset), description. */
export interface ConfigVariable {
  readonly env: VariableName;
  readonly flag: string;
  readonly field: string;
  readonly default: string;
  readonly description: string;
}

/** `LLAMA_URL` → `--llama-url`. */
const flagOf = (env: string): string => `--${env.toLowerCase().replaceAll('_', '-')}`;
/** `LLAMA_URL` → `llamaUrl`. */
const fieldOf = (env: string): string => env.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Every variable, in documentation order; the source of `--help` and of the README's configuration table. */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = Object.freeze(
  (Object.keys(DEFS) as VariableName[]).map((env) =>
    Object.freeze({
      env,
      flag: flagOf(env),
      field: fieldOf(env),
      default: DEFS[env].default,
      description: DEFS[env].description,
    }),
  ),
);

type Shape = { [K in VariableName]: (typeof DEFS)[K]['schema'] };
const shape = Object.fromEntries(Object.entries(DEFS).map(([env, def]) => [env, def.schema])) as Shape;

/** One resolved backend: base URL without trailing slash, slot count and kind. */
export interface BackendConfig {
  readonly url: string;
  readonly nSlots: number;
  /** The slot count was set (N_SLOTS or the entry's n_slots); otherwise the server's `total_slots` is used. */
  readonly nSlotsConfigured: boolean;
  readonly type: BackendType;
  /** The server's `--cache-ram` in MiB as the operator declares it (the entry's cache_ram_mib, else SERVER_CACHE_RAM_MIB). */
  readonly serverCacheRamMib: number;
}

/**
 * Raw strings keyed by env name (undefined = unset) → Config. Field names are the camelCase env names;
 * durations stay in the units of their names (seconds, hours, minutes).
 */
export const ConfigSchema = z.object(shape).transform((v) => {
  const entries = v.BACKENDS ?? [{ url: v.LLAMA_URL }];
  const backends: readonly BackendConfig[] = Object.freeze(
    entries.map((e) =>
      Object.freeze({
        url: e.url,
        nSlots: e.nSlots ?? v.N_SLOTS,
        nSlotsConfigured: e.nSlots !== undefined,
        type: e.type ?? v.BACKEND_TYPE,
        serverCacheRamMib: e.cacheRamMib ?? v.SERVER_CACHE_RAM_MIB,
      }),
    ),
  );
  return {
    llamaUrl: v.LLAMA_URL,
    nSlots: v.N_SLOTS,
    /** Always at least one entry: BACKENDS when set, else LLAMA_URL with N_SLOTS. */
    backends,
    backendType: v.BACKEND_TYPE,
    /** null = backend calls carry no key (a client's own credential is passed through on passthrough routes). */
    backendApiKey: v.BACKEND_API_KEY,
    host: v.HOST,
    port: v.PORT,
    maxBodyMb: v.MAX_BODY_MB,
    clientHeadersTimeout: v.CLIENT_HEADERS_TIMEOUT,
    clientBodyTimeout: v.CLIENT_BODY_TIMEOUT,
    /** null = clients need no key. */
    apiKeys: v.API_KEYS,
    metaDir: v.META_DIR,
    modelId: v.MODEL_ID,
    bigThresholdWords: v.BIG_THRESHOLD_WORDS,
    wordsPerBlock: v.WORDS_PER_BLOCK,
    lcpTh: v.LCP_TH,
    requestTimeout: v.REQUEST_TIMEOUT,
    connectTimeout: v.CONNECT_TIMEOUT,
    acquireTimeout: v.ACQUIRE_TIMEOUT,
    /** null = cleanup off. */
    cacheDir: v.CACHE_DIR,
    cacheMaxAgeHours: v.CACHE_MAX_AGE_HOURS,
    cacheMaxSizeGb: v.CACHE_MAX_SIZE_GB,
    cacheCleanupIntervalMinutes: v.CACHE_CLEANUP_INTERVAL_MINUTES,
    savePolicy: v.SAVE_POLICY,
    saveMinNewTokens: v.SAVE_MIN_NEW_TOKENS,
    idleSaveSeconds: v.IDLE_SAVE_SECONDS,
    /** The default of each backend's `serverCacheRamMib` (BACKENDS' cache_ram_mib overrides it). */
    serverCacheRamMib: v.SERVER_CACHE_RAM_MIB,
    shutdownTimeoutSeconds: v.SHUTDOWN_TIMEOUT_SECONDS,
    logLevel: v.LOG_LEVEL,
    logFormat: v.LOG_FORMAT,
    /** null = the /proxycache/ API answers to loopback clients only. */
    adminToken: v.ADMIN_TOKEN,
  };
});

/** The validated configuration; `loadConfig` returns it frozen. */
export type Config = Readonly<z.output<typeof ConfigSchema>>;
export type { BackendType };
