/**
 * What the real bench compares: llama-server configurations (its defaults, or `-np 2`) and, on each, seven setups,
 * from llama-server alone with three RAM-cache sizes (and behind a bare relay) to proxycache with the Python proxy's
 * policy and with its own default (on the small RAM cache, and on llama-server's default one). Pure: flags and
 * environments only.
 */

/** How llama-server is started, besides the RAM cache; `optIn`: run only when `--modes` names it. */
export const SERVER_MODES: Record<string, { description: string; args: string[]; optIn?: boolean }> = {
  default: {
    description: 'llama-server defaults: no -np (4 slots sharing one unified KV buffer, idle slots cached in RAM)',
    args: [],
  },
  np2: { description: '-np 2 (2 slots, KV split per slot)', args: ['-np', '2'] },
  // Room for about three of the workloads' conversations in the 4 slots' shared cells (see src/slots/kv-room.ts).
  tight: {
    description: 'llama-server defaults with -c 12288: the 4 slots share room for about three conversations',
    args: ['-c', '12288'],
    optIn: true,
  },
};

/** The server modes a run covers unless `--modes` says. */
export const DEFAULT_MODES = Object.keys(SERVER_MODES).filter((mode) => !SERVER_MODES[mode]!.optIn);

/** The RAM cache a config runs with: off, smaller than the working set, or llama-server's default 8 GiB. */
export type RamCache = 'off' | 'small' | 'default';

export interface RealConfig {
  description: string;
  ramCache: RamCache;
  /** The proxy's environment besides LLAMA_URL, META_DIR and CACHE_DIR; absent: clients talk to llama-server. */
  proxyEnv?: Record<string, string>;
  /** Clients talk to llama-server through a bare relay (relay.ts): what any proxy's hop costs. */
  relay?: true;
}

export const REAL_CONFIGS: Record<string, RealConfig> = {
  'direct-ram0': { description: 'llama-server alone, --cache-ram 0', ramCache: 'off' },
  'direct-small': { description: 'llama-server alone, RAM cache smaller than the working set', ramCache: 'small' },
  'direct-8g': { description: 'llama-server alone, its default 8 GiB RAM cache', ramCache: 'default' },
  'relay-8g': {
    description: 'llama-server with its default RAM cache behind a bare HTTP relay (no cache): what the hop costs',
    ramCache: 'default',
    relay: true,
  },
  always: {
    description: "proxycache with SAVE_POLICY=always (the Python proxy's policy), small RAM cache",
    ramCache: 'small',
    proxyEnv: { SAVE_POLICY: 'always' },
  },
  proxycache: { description: 'proxycache with its defaults, small RAM cache', ramCache: 'small', proxyEnv: {} },
  'proxycache-8g': {
    description: "proxycache with its defaults, llama-server's default 8 GiB RAM cache (what most users run)",
    ramCache: 'default',
    proxyEnv: {},
  },
};

/** Share of the working set the small RAM cache holds. */
export const SMALL_CACHE_SHARE = 0.25;

/** --cache-ram in MiB for a working set of `tokens` tokens at `kvBytesPerToken`. */
export function smallCacheMiB(tokens: number, kvBytesPerToken: number): number {
  return Math.max(1, Math.floor((tokens * kvBytesPerToken * SMALL_CACHE_SHARE) / 2 ** 20));
}

/**
 * The proxy's environment of a config: as a user would, it declares the server's `--cache-ram`
 * (SERVER_CACHE_RAM_MIB; the default 8192 MiB needs nothing). Undefined for llama-server alone.
 */
export function proxyEnvOf(config: RealConfig, smallMiB: number): Record<string, string> | undefined {
  if (!config.proxyEnv) return undefined;
  const ram = config.ramCache === 'off' ? '0' : config.ramCache === 'small' ? String(smallMiB) : undefined;
  return { ...config.proxyEnv, ...(ram !== undefined && { SERVER_CACHE_RAM_MIB: ram }) };
}

/** The llama-server flags of a config in a mode. */
export function serverArgs(mode: string, config: RealConfig, smallMiB: number): string[] {
  const ram =
    config.ramCache === 'off'
      ? ['--cache-ram', '0']
      : config.ramCache === 'small'
        ? ['--cache-ram', String(smallMiB)]
        : [];
  return [...SERVER_MODES[mode]!.args, ...ram];
}
