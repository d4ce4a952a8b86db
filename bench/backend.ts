/**
 * The backend a workload runs against: a fresh simulator per workload × config (the default), or a server the user
 * runs (`--backend URL`), which the bench can neither restart nor count slot actions on. Each config then starts
 * from a clean server as far as the API allows: slots erased (llama-server) or every model unloaded (llama-swap).
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { startSimulator } from '../src/sim/index.js';
import type { CostModel, SimEvent } from '../src/sim/index.js';
import type { Workload } from './workloads.js';

export type BackendKind = 'llama-server' | 'llama-swap';

/** A server the user runs, given on the command line. */
export interface ExternalBackend {
  url: string;
  kind: BackendKind;
  /** Its `--slot-save-path`, when on this machine: the proxy gets it as CACHE_DIR and the bench measures it. */
  slotSavePath?: string;
  /** Its slot count (`-np`), to erase every slot between configs. */
  slots: number;
}

export interface SlotActionCounts {
  saves: number;
  restores: number;
  bytesWritten: number;
  bytesRead: number;
  /**
   * Tokens in the states saved, as the server answered (`n_saved`; counted from the proxy's logs only); NaN when a
   * save's log line did not say.
   */
  tokensWritten?: number;
  /** Slot actions the proxy logged as failed (counted from its logs only). */
  failedSaves?: number;
  failedRestores?: number;
  /** Growth over an entry on disk that evictions let go unsaved (`evict_skip.unsaved_tokens`, smart policy). */
  skippedGrowthTokens?: number;
  /**
   * Tokens the server prefilled for the proxy's own replays (a rescue from its RAM cache: `prompt_n`), which no
   * client's answer shows; counted from the proxy's logs only.
   */
  replayPrefillTokens?: number;
}

export interface BackendUnderTest {
  url: string;
  /** Where the server writes slot files, when the bench can see it. */
  cacheDir?: string;
  /** Slots per model, when the bench decides it (the simulator); a real server says so in /props. */
  slotsPerModel?: number;
  /** The simulator's event log (what ran on which slot); undefined for a server the user runs. */
  events?: () => readonly SimEvent[];
  /** Slot actions as the server counted them; undefined when only the proxy's logs can tell. */
  counts(): SlotActionCounts | undefined;
  /** Lose slots and RAM cache, keep files (undefined: not possible with this backend). */
  restart?: () => Promise<void>;
  /** Bytes of the slot files this config left on disk. */
  diskBytes(ownFiles: readonly string[]): Promise<number>;
  close(ownFiles: readonly string[]): Promise<void>;
}

/** Start the simulator the workload describes, its files under `root`. */
export async function simulatorBackend(workload: Workload, cost: CostModel, root: string): Promise<BackendUnderTest> {
  const cacheDir = join(root, 'kv_cache');
  const sim = await startSimulator({
    mode: workload.mode,
    models: workload.models.map((id) => ({ id, nSlots: workload.slotsPerModel, nCtx: 65536 })),
    slotSavePath: cacheDir,
    cacheRamMiB: 8192,
    cost,
  });
  return {
    url: sim.url,
    cacheDir,
    slotsPerModel: workload.slotsPerModel,
    counts: () => sim.stats(),
    events: () => sim.events,
    restart: () => sim.restart(),
    diskBytes: () => dirBytes(cacheDir),
    close: () => sim.close(),
  };
}

/**
 * A server the user runs. Before the config it is reset; afterwards the slot files this config's proxy wrote are
 * deleted again (only those: the directory may hold other files).
 */
export async function externalBackend(backend: ExternalBackend): Promise<BackendUnderTest> {
  await reset(backend);
  return {
    url: backend.url,
    ...(backend.slotSavePath !== undefined && { cacheDir: backend.slotSavePath }),
    counts: () => undefined,
    diskBytes: async (ownFiles) => (backend.slotSavePath ? filesBytes(backend.slotSavePath, ownFiles) : 0),
    close: async (ownFiles) => {
      if (!backend.slotSavePath) return;
      for (const name of ownFiles) await unlink(join(backend.slotSavePath, name)).catch(() => undefined);
    },
  };
}

async function reset(backend: ExternalBackend): Promise<void> {
  if (backend.kind === 'llama-swap') {
    await call(backend.url, 'GET', '/unload');
    return;
  }
  // The RAM prompt cache survives an erase: a run right after another one may find some prompts there. Without
  // --slot-save-path the server refuses every slot action (501); then there is nothing the bench can reset.
  for (let id = 0; id < backend.slots; id++) await call(backend.url, 'POST', `/slots/${id}?action=erase`, [501]);
}

async function call(url: string, method: 'GET' | 'POST', path: string, tolerated: number[] = []): Promise<void> {
  const res = await request(`${url}${path}`, {
    method,
    ...(method === 'POST' && { body: '{}', headers: { 'content-type': 'application/json' } }),
  });
  await res.body.text();
  if (res.statusCode >= 400 && !tolerated.includes(res.statusCode))
    throw new Error(`${method} ${url}${path} answered ${res.statusCode}`);
}

async function dirBytes(dir: string): Promise<number> {
  return filesBytes(dir, await readdir(dir).catch(() => [] as string[]));
}

async function filesBytes(dir: string, names: readonly string[]): Promise<number> {
  let total = 0;
  for (const name of names) {
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s?.isFile()) total += s.size;
  }
  return total;
}
