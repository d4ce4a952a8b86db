/**
 * One configured backend and what the proxy knows about it: its client and kind, its real slot count, the identity
 * of each model file behind it, the models it has loaded, and how it treats idle slots. A backend that restarted or
 * was unreachable is forgotten as a whole (`forget`), so no piece of that knowledge outlives the others.
 */
import type { Logger } from 'pino';
import type { BackendConfig } from '../config/index.js';
import { describeCause } from '../errors.js';
import type { SlotPool } from '../slots/slot-pool.js';
import { probeIdleSlotClearing } from './idle-clearing-probe.js';
import type { LlamaClient } from './llama-client.js';
import { ServerBehaviour } from './server-behaviour.js';
import { ServerRamCacheLedger } from './server-ram-cache.js';
import { TokensPerWord } from './tokens-per-word.js';

export interface BackendDeps {
  /** Its position in BACKENDS: slots and meta files name it by this index and its URL. */
  index: number;
  client: LlamaClient;
  /** Its slot count, and its `--cache-ram` as the operator declares it (BACKENDS' cache_ram_mib or SERVER_CACHE_RAM_MIB). */
  settings: Pick<BackendConfig, 'nSlots' | 'nSlotsConfigured' | 'serverCacheRamMib'>;
  /** MODEL_ID: the model a plain llama-server serves under every name. */
  modelId: string;
  /** Its slots: resized or limited to the server's real count, forgotten when the server is. */
  pool: Pick<SlotPool, 'group' | 'resize' | 'limitSlots' | 'forgetIdleOn' | 'forgetClearedOn'>;
  log: Logger;
}

export class Backend {
  readonly index: number;
  readonly client: LlamaClient;
  /** How the server treats idle slots, its tasks in flight, and when the proxy last heard from it. */
  readonly behaviour = new ServerBehaviour();
  /** What its RAM cache holds, as far as the proxy can tell (a server that clears idle slots). */
  readonly ramCache: ServerRamCacheLedger;
  /** Tokens a prompt word makes on each of its models, as its answers showed. */
  readonly tokensPerWord = new TokensPerWord();
  /** Model identities being fetched or known, by model name. */
  private readonly fingerprints = new Map<string, Promise<string | undefined>>();
  private readonly known = new Map<string, string>();
  /** Slot-count checks done or running, by slot group (see slotGroup). */
  private readonly slotChecks = new Map<string, Promise<void>>();
  /** The cells of each slot group's KV buffer as `GET /slots` last showed them (a slot's `n_ctx`; see kv-room.ts). */
  private readonly kvCellsByGroup = new Map<string, number>();
  /** The one idle-slot probe (until the backend is probed again after being unreachable). */
  private idleProbe: Promise<void> | undefined;
  /** Behind llama-swap or a router: the models loaded at the last look, and (router) how many it runs at once. */
  private loadedAtLastLook: ReadonlySet<string> | undefined;
  private modelsAtOnce: number | undefined;

  constructor(private readonly deps: BackendDeps) {
    this.index = deps.index;
    this.client = deps.client;
    this.ramCache = new ServerRamCacheLedger(deps.settings.serverCacheRamMib);
  }

  get url(): string {
    return this.client.url;
  }

  /**
   * Probe the kind if it is not known yet (start-up, or after the backend was unreachable), and on a plain
   * llama-server check the slot count, learn the model identity and probe idle-slot clearing before any request
   * is pinned (the first requests after start-up would otherwise use wrapping ids). Never throws.
   */
  async ensureReady(): Promise<void> {
    const { client, log, modelId } = this.deps;
    if (!client.kind) {
      try {
        const kind = await client.detectKind();
        log.info({ backend: client.url, kind }, 'backend kind detected');
        // A backend that was unreachable may have restarted: what we believed about it is gone.
        this.forget();
        this.idleProbe = undefined;
      } catch (err) {
        log.warn({ backend: client.url, err: describeCause(err) }, 'backend probe failed');
        return;
      }
    }
    if (client.kind === 'llama-server') {
      await this.checkSlotCount(modelId);
      await this.fingerprint(modelId);
      await this.probeIdleSlots();
    }
  }

  /**
   * The backend restarted or was unreachable: forget what its idle slots held, the model identities and how it
   * treats idle slots (it may come back configured differently).
   */
  forget(): void {
    // A request holding a slot whose task was not sent yet (waiting at the launch gate) counts on it too.
    this.deps.pool.forgetClearedOn(this.index, (slot) => this.behaviour.launched(slot));
    this.fingerprints.clear();
    this.known.clear();
    this.behaviour.forget();
    this.ramCache.clear();
    this.kvCellsByGroup.clear();
    this.loadedAtLastLook = undefined;
    this.modelsAtOnce = undefined;
  }

  /** The cells of `model`'s KV buffer as `GET /slots` last showed them; undefined until a look showed them. */
  kvCells(model: string): number | undefined {
    return this.kvCellsByGroup.get(this.slotGroup(model));
  }

  /** What a `GET /slots` answer for `model` showed of its KV buffer. */
  noteKvCells(model: string, cells: number): void {
    this.kvCellsByGroup.set(this.slotGroup(model), cells);
  }

  /**
   * The slots `model` runs on: a plain llama-server's one set whatever name a request uses; in router mode (and behind
   * llama-swap) each model is a server of its own, with its own slots and KV buffer (its own `-c`).
   */
  private slotGroup(model: string): string {
    return this.client.kind === 'llama-server' ? '' : model;
  }

  /**
   * Check the server's real slot count for a model once it is loaded (ids wrap silently otherwise). Resolves when
   * the check is done, or failed (then the next call tries again); concurrent callers share one check. Never rejects.
   */
  checkSlotCount(model: string): Promise<void> {
    const { client, pool, log, settings } = this.deps;
    const group = this.slotGroup(model);
    const pending = this.slotChecks.get(group);
    if (pending) return pending;
    const { nSlots: configured, nSlotsConfigured } = settings;
    const check = client
      .totalSlots(model)
      .then((total) => {
        if (total === undefined) {
          this.slotChecks.delete(group);
          return;
        }
        if (!nSlotsConfigured) {
          if (total !== configured)
            log.info({ backend: client.url, model, total_slots: total }, 'slot count taken from the server');
          pool.resize(this.index, model, total);
        } else if (total < configured) {
          log.warn(
            { backend: client.url, model, configured, total_slots: total },
            "configured slot count exceeds the server's total_slots; using only the real slots",
          );
          pool.limitSlots(this.index, model, total);
        } else if (total > configured) {
          log.info(
            { backend: client.url, model, configured, total_slots: total },
            'server has more slots than configured; using the configured count',
          );
        }
      })
      .catch(() => {
        this.slotChecks.delete(group);
      });
    this.slotChecks.set(group, check);
    return check;
  }

  /** The model file's identity here (fetched once; see LlamaClient.fingerprint). */
  fingerprint(model: string): Promise<string | undefined> {
    let pending = this.fingerprints.get(model);
    if (!pending) {
      pending = this.client.fingerprint(model).then(
        (fp) => {
          if (fp === undefined) this.fingerprints.delete(model);
          else this.known.set(model, fp);
          return fp;
        },
        () => {
          this.fingerprints.delete(model);
          return undefined;
        },
      );
      this.fingerprints.set(model, pending);
    }
    return pending;
  }

  /** The identity if already known, without asking the backend (a plain llama-server has one model under every name). */
  knownFingerprint(model: string): string | undefined {
    return (
      this.known.get(model) ?? (this.client.kind === 'llama-server' ? this.known.get(this.deps.modelId) : undefined)
    );
  }

  /** Every model identity known here now, by model name (for the status API). */
  knownFingerprints(): Record<string, string> {
    return Object.fromEntries(this.known);
  }

  /**
   * The models loaded now behind llama-swap or router mode (undefined on a plain llama-server, or when they could
   * not be read). What belonged to models no longer loaded is forgotten: their idle slots' contents and what their
   * RAM caches held (their server is gone, and its slots and cache with it) and their identities (the name may point
   * at another file when it loads again).
   */
  async loadedModels(): Promise<Set<string> | undefined> {
    const { client, log, pool } = this.deps;
    let loaded: Set<string> | undefined;
    try {
      loaded = await client.loadedModels();
    } catch (err) {
      log.warn({ backend: client.url, err: describeCause(err) }, 'could not read the loaded models');
      return undefined;
    }
    if (!loaded) return undefined;
    this.loadedAtLastLook = loaded;
    pool.forgetIdleOn(this.index, (slot) => !loaded.has(slot.model));
    this.ramCache.keepModels(loaded);
    for (const model of [...this.known.keys()]) {
      if (loaded.has(model)) continue;
      this.fingerprints.delete(model);
      this.known.delete(model);
    }
    return loaded;
  }

  /**
   * Whether loading `model`, which is not among `loaded`, unloads another model: behind llama-swap always (the proxy
   * cannot see its groups); in router mode once it runs `--models-max` models (its `/props` `max_instances`; unknown:
   * taken as reached).
   */
  async loadUnloads(loaded: ReadonlySet<string>): Promise<boolean> {
    if (this.client.kind !== 'router') return true;
    this.modelsAtOnce = (await this.client.modelsAtOnce().catch(() => undefined)) ?? this.modelsAtOnce;
    return this.routerFull(loaded);
  }

  /**
   * Whether a request for `model` would unload one of the models loaded, as far as the last look told (no I/O): a
   * model loaded then needs no load; behind llama-swap any other one does; in router mode only at `--models-max`.
   */
  wouldUnloadFor(model: string): boolean {
    const loaded = this.loadedAtLastLook;
    if (loaded?.has(model)) return false;
    if (this.client.kind !== 'router') return true;
    return loaded === undefined || this.routerFull(loaded);
  }

  /** The router runs as many models as `--models-max` lets it (not known: taken as so), so a load unloads one. */
  private routerFull(loaded: ReadonlySet<string>): boolean {
    return this.modelsAtOnce === undefined || loaded.size >= this.modelsAtOnce;
  }

  /** Learn once whether a plain llama-server clears idle slots, while none of its slots is in use. */
  private probeIdleSlots(): Promise<void> {
    const slots = this.deps.pool.group(this.index, this.deps.modelId).filter((s) => !s.disabled);
    if (this.behaviour.settled() || slots.length < 2 || slots.some((s) => s.busy)) return Promise.resolve();
    this.idleProbe ??= this.runIdleProbe();
    return this.idleProbe;
  }

  private async runIdleProbe(): Promise<void> {
    const clears = await probeIdleSlotClearing(this.client, this.deps.modelId);
    if (clears === true) this.noteClearsIdleSlots('start-up probe');
    else if (clears === false) this.behaviour.noteKeepsIdleSlots();
  }

  /**
   * The server was seen clearing an idle slot by itself (`seenBy`: how): from now on the proxy saves idle slots
   * before each task. Said once per backend; a warning when found out only while serving.
   */
  noteClearsIdleSlots(seenBy: 'start-up probe' | 'empty save' | 'slots check'): void {
    if (!this.behaviour.noteClearsIdleSlots()) return;
    this.deps.log[seenBy === 'start-up probe' ? 'info' : 'warn'](
      { backend: this.url, seen_by: seenBy },
      IDLE_CLEARING_FOUND,
    );
  }
}

/** The one line that says a backend clears idle slots (see noteClearsIdleSlots). */
export const IDLE_CLEARING_FOUND =
  'the server clears idle slots when a task starts (llama-server default: unified KV, --cache-idle-slots): saving idle slots before each task and restoring from disk';
