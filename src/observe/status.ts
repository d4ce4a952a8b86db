/**
 * The JSON bodies of `GET /proxycache/status` and `GET /proxycache/entries`, built from the proxy's state in
 * memory (and the backend probe's latest reports). Reads only; no I/O here.
 */
import type { BackendKind } from '../backend/backend-kind.js';
import type { CacheMeta } from '../cache/meta-file.js';
import type { Config } from '../config/index.js';
import type { SlotState } from '../slots/slot-state.js';
import type { RamTierState } from '../slots/ram-rescue.js';
import type { BackendReport } from './backend-probe.js';
import { round3 } from './minute-history.js';
import type { Totals } from './observer.js';
import { shortKey } from '../cache/meta-file.js';

/** Speeds learnt per model (see RestoreEconomics.speeds). */
type Speeds = ReadonlyMap<
  string,
  { prefillMsPerToken?: number; saveMsPerToken?: number; restoreMsPerToken?: number; restoresEnabled: boolean }
>;

export interface StatusSources {
  version: string;
  /** Milliseconds since the epoch when the proxy started. */
  startedAt: number;
  config: Pick<Config, 'savePolicy' | 'backends' | 'cacheDir' | 'cacheMaxSizeGb'>;
  clients: ReadonlyArray<{ readonly url: string; readonly kind: BackendKind | undefined }>;
  slots: () => readonly SlotState[];
  entries: () => Iterable<CacheMeta>;
  /** Whether the backend clears idle slots: true, false, or undefined while not known. */
  clearsIdleSlots: (backend: number) => boolean | undefined;
  /** The server's RAM cache size (MiB) the proxy works with: as declared, or lowered by a miss (Infinity: no limit). */
  ramCacheMib: (backend: number) => number;
  knownFingerprints: (backend: number) => Record<string, string>;
  speeds: () => Speeds;
  totals: () => Totals;
  /** Conversations whose latest state only a server's RAM cache holds, waiting for their rescue to disk. */
  inRamCacheOnly: () => number;
  /**
   * Whether leaving answers to the backend's RAM cache pays, what that was judged on (RamTierPayoff), and the models
   * whose rescue replays go without the answer's text (ReplayReplies).
   */
  ramTier: (backend: number) => RamTierState;
  now?: () => number;
}

export function buildStatus(src: StatusSources, reports: readonly BackendReport[]): Record<string, unknown> {
  const now = (src.now ?? Date.now)();
  const slots = src.slots();
  return {
    version: src.version,
    uptime_s: Math.round((now - src.startedAt) / 1000),
    policy: src.config.savePolicy,
    backends: src.clients.map((client, index) => ({
      index,
      url: client.url,
      kind: client.kind ?? null,
      reachable: reports[index]?.reachable ?? null,
      loaded_models: reports[index]?.loadedModels ?? null,
      fingerprints: src.knownFingerprints(index),
      slot_count: slotCount(src, slots, index),
      clears_idle_slots: src.clearsIdleSlots(index) ?? null,
      ram_cache_mib: mibView(src.ramCacheMib(index)),
      ram_tier: ramTierView(src.ramTier(index)),
    })),
    slots: slots.map((slot) => slotView(slot)),
    cache: cacheView(src),
    economics: economicsView(src.speeds()),
    totals: src.totals(),
  };
}

function ramTierView(v: RamTierState): Record<string, unknown> {
  return {
    leaves_answers: v.pays,
    answers_left: round3(v.left),
    rescued: round3(v.rescued),
    rescue_ms: Math.round(v.rescueMs),
    save_ms: Math.round(v.saveMs),
    replays_without_text: v.replaysWithoutText,
  };
}

/** Every index entry, newest first. */
export function buildEntries(entries: Iterable<CacheMeta>, now: number): Record<string, unknown> {
  const list = [...entries]
    .sort((a, b) => b.timestamp - a.timestamp)
    .map((meta) => ({
      key: meta.key,
      model: meta.model_id,
      tokens: meta.n_tokens ?? null,
      bytes: meta.file_bytes ?? null,
      age_s: Math.max(0, Math.round(now / 1000 - meta.timestamp)),
      backend: meta.backend ?? null,
    }));
  return { entries: list };
}

/** The slots in use on a backend: the server's real count on a plain llama-server, else the configured count per model. */
function slotCount(src: StatusSources, slots: readonly SlotState[], backend: number): number {
  const shared = slots.filter((s) => s.backend === backend && s.model === '');
  if (shared.length > 0) return shared.filter((s) => !s.disabled).length;
  return src.config.backends[backend]?.nSlots ?? 0;
}

function slotView(slot: SlotState): Record<string, unknown> {
  const content = slot.content;
  return {
    backend: slot.backend,
    // '' is the shared group of a plain llama-server, where every model name maps to the same slots.
    model: slot.model === '' ? null : slot.model,
    id: slot.id,
    busy: slot.busy,
    disabled: slot.disabled,
    last_used: slot.lastUsedAt === undefined ? null : new Date(slot.lastUsedAt).toISOString(),
    content: content
      ? {
          key: shortKey(content.key),
          model: content.model,
          tokens: content.nTokens ?? null,
          big: content.big,
          saved: content.saved,
        }
      : null,
  };
}

function cacheView(src: StatusSources): Record<string, unknown> {
  let entries = 0;
  let bytes = 0;
  let oldest: number | undefined;
  for (const meta of src.entries()) {
    entries++;
    bytes += meta.file_bytes ?? 0;
    if (oldest === undefined || meta.timestamp < oldest) oldest = meta.timestamp;
  }
  const budget = src.config.cacheMaxSizeGb > 0 ? Math.round(src.config.cacheMaxSizeGb * 1024 ** 3) : null;
  return {
    entries,
    bytes,
    budget_bytes: budget,
    use: budget === null ? null : round3(bytes / budget),
    oldest_entry: oldest === undefined ? null : new Date(oldest * 1000).toISOString(),
    dir: src.config.cacheDir ?? null,
    in_ram_cache_only: src.inRamCacheOnly(),
  };
}

function economicsView(speeds: Speeds): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [model, s] of speeds) {
    out[model] = {
      prefill_ms_per_token: s.prefillMsPerToken === undefined ? null : round4(s.prefillMsPerToken),
      save_ms_per_token: s.saveMsPerToken === undefined ? null : round4(s.saveMsPerToken),
      restore_ms_per_token: s.restoreMsPerToken === undefined ? null : round4(s.restoreMsPerToken),
      restores_enabled: s.restoresEnabled,
    };
  }
  return out;
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}

/** -1 for no limit, as SERVER_CACHE_RAM_MIB says it; else whole MiB. */
const mibView = (mib: number): number => (mib === Infinity ? -1 : Math.round(mib));
