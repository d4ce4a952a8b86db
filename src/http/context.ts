/**
 * Everything a request handler needs, built once by createProxy(): the clients, the slot pool, the index and the
 * helpers that tie them together (backend kind probing, slot-count checks, model identities, what is loaded,
 * disk matches per backend).
 */
import type { Logger } from 'pino';
import type { LlamaClient } from '../backend/llama-client.js';
import type { PrefixIndex } from '../cache/prefix-index.js';
import type { Config } from '../config/index.js';
import { describeCause } from '../errors.js';
import { probeIdleSlotClearing } from '../backend/idle-clearing-probe.js';
import type { RestoreEconomics } from '../slots/restore-economics.js';
import type { PromptAnalyzer } from '../prompt/prompt-analyzer.js';
import type { BackendActivity } from '../backend/backend-activity.js';
import type { ServerBehaviour } from '../backend/server-behaviour.js';
import type { ResaveRent } from '../slots/resave-rent.js';
import type { LaunchGate } from '../slots/launch-gate.js';
import type { AnswerSaver } from '../slots/write-behind.js';
import type { SavePolicy } from '../slots/save-policy.js';
import type { SlotCache } from '../slots/slot-cache.js';
import type { SlotPool } from '../slots/slot-pool.js';
import type { DiskMatch } from '../slots/slot-state.js';
import { createModelWatch } from './model-watch.js';
import type { ModelWatch } from './model-watch.js';
import type { Observer } from '../observe/observer.js';

export interface ProxyContext extends ModelWatch {
  config: Config;
  clients: readonly LlamaClient[];
  pool: SlotPool;
  index: PrefixIndex;
  slotCache: SlotCache;
  economics: RestoreEconomics;
  /** Prompt analysis that remembers earlier requests' messages (only what a conversation adds is hashed). */
  analyzer: PromptAnalyzer;
  /** Prefills and slot actions running on each backend (a prefill that shared the server is not the model's speed). */
  activity: BackendActivity;
  /** SAVE_POLICY, chosen once (see save-policy.ts). */
  policy: SavePolicy;
  /** Saves each answer's new state in the backend's idle time, and before a clearing task start (smart), or nothing. */
  answerSaver: AnswerSaver;
  /** How each backend treats idle slots, and when the proxy last heard from it. */
  behaviour: ServerBehaviour;
  /** One task launch at a time on backends that clear idle slots. */
  launchGate: LaunchGate;
  /** Growth given up by evictions that skipped their save, per older entry (smart policy's ski rental). */
  resaveRent: ResaveRent;
  log: Logger;
  /** Keeps each request's `chat` line for the status API, the dashboard and the metrics (src/observe/). */
  observer: Pick<Observer, 'noteRequest'>;
  /** Requests being handled now, by model (a request for another model behind llama-swap means a swap is coming). */
  pendingByModel: Map<string, number>;
  /** Chat handlers still running, including their work after the reply (saves); shutdown waits for them. */
  inflight: Set<Promise<unknown>>;
  /**
   * Probe every backend whose kind is not known yet (start-up, or after it was unreachable), and make sure the
   * slot count of every plain llama-server was checked before a request is pinned. Never throws.
   */
  ensureBackendKinds(): Promise<void>;
  /**
   * Check the server's real slot count for a model once it is loaded (ids wrap silently otherwise). Resolves when
   * the check is done, or failed (then the next call tries again); concurrent callers share one check. Never rejects.
   */
  checkSlotCount(backend: number, model: string): Promise<void>;
  /** The best disk entry for this prompt whose file lives on `backend` and was written by the same model file. */
  diskMatch(backend: number, prompt: { model: string; blocks: readonly string[] }): DiskMatch | undefined;
}

type Derived = 'ensureBackendKinds' | 'checkSlotCount' | 'diskMatch' | 'pendingByModel' | 'inflight' | keyof ModelWatch;

export function createProxyContext(deps: Omit<ProxyContext, Derived>): ProxyContext {
  const { clients, pool, index, log, config } = deps;
  const slotChecks = new Map<string, Promise<void>>();
  /** One idle-slot probe per backend (until it is probed again after being unreachable). */
  const idleProbes = new Map<number, Promise<void>>();
  const backendIndexByUrl = new Map(clients.map((c, i) => [c.url, i]));
  const watch = createModelWatch({ ...deps, skipSave: deps.policy.skipSave });

  async function ensureBackendKinds(): Promise<void> {
    await Promise.all(
      clients.map(async (client, i) => {
        if (!client.kind) {
          try {
            const kind = await client.detectKind();
            log.info({ backend: client.url, kind }, 'backend kind detected');
            // A backend that was unreachable may have restarted: what we believed its slots held is gone.
            pool.forgetIdleOn(i);
            watch.forgetBackend(i);
            deps.behaviour.forget(i);
            idleProbes.delete(i);
          } catch (err) {
            log.warn({ backend: client.url, err: describeCause(err) }, 'backend probe failed');
            return;
          }
        }
        // Before any id_slot is sent: the first requests after start-up would otherwise use wrapping ids.
        if (client.kind === 'llama-server') {
          await checkSlotCount(i, config.modelId);
          await watch.fingerprint(i, config.modelId);
          await probeIdleSlots(i);
        }
      }),
    );
  }

  /** Learn once whether a plain llama-server clears idle slots, while none of its slots is in use. */
  function probeIdleSlots(backend: number): Promise<void> {
    const slots = pool.group(backend, config.modelId).filter((s) => !s.disabled);
    if (deps.behaviour.settled(backend) || slots.length < 2 || slots.some((s) => s.busy)) return Promise.resolve();
    let probe = idleProbes.get(backend);
    if (!probe) idleProbes.set(backend, (probe = runIdleProbe(backend)));
    return probe;
  }

  async function runIdleProbe(backend: number): Promise<void> {
    const clears = await probeIdleSlotClearing(clients[backend]!, config.modelId);
    if (clears === true && deps.behaviour.noteClearsIdleSlots(backend)) {
      log.info({ backend: clients[backend]!.url }, 'the server clears idle slots when a task starts (llama-server default: unified KV, --cache-idle-slots): saving idle slots before each task and restoring from disk');
    } else if (clears === false) {
      deps.behaviour.noteKeepsIdleSlots(backend);
    }
  }

  function checkSlotCount(backend: number, model: string): Promise<void> {
    const groupModel = clients[backend]!.kind === 'llama-server' ? '' : model;
    const id = `${backend}\u0000${groupModel}`;
    const pending = slotChecks.get(id);
    if (pending) return pending;
    const { nSlots: configured, nSlotsConfigured } = config.backends[backend]!;
    const url = clients[backend]!.url;
    const check = clients[backend]!
      .totalSlots(model)
      .then((total) => {
        if (total === undefined) {
          slotChecks.delete(id);
          return;
        }
        if (!nSlotsConfigured) {
          if (total !== configured) log.info({ backend: url, model, total_slots: total }, 'slot count taken from the server');
          pool.resize(backend, model, total);
        } else if (total < configured) {
          log.warn({ backend: url, model, configured, total_slots: total },
            'configured slot count exceeds the server\'s total_slots; using only the real slots');
          pool.limitSlots(backend, model, total);
        } else if (total > configured) {
          log.info({ backend: url, model, configured, total_slots: total },
            'server has more slots than configured; using the configured count');
        }
      })
      .catch(() => {
        slotChecks.delete(id);
      });
    slotChecks.set(id, check);
    return check;
  }

  function diskMatch(backend: number, prompt: { model: string; blocks: readonly string[] }): DiskMatch | undefined {
    if (!deps.policy.restoresEnabled(prompt.model)) return undefined;
    const current = watch.knownFingerprint(backend, prompt.model);
    const best = index.findBest({
      model: prompt.model,
      wpb: config.wordsPerBlock,
      blocks: prompt.blocks,
      lcpTh: config.lcpTh,
      prefer: deps.policy.prefer,
      accept: (meta) =>
        // Seed-written metas name no backend: their files were written by the first (then only) backend.
        (meta.backend === undefined ? 0 : backendIndexByUrl.get(meta.backend)) === backend &&
        // Never restore a cache into another model file: an entry that says which model wrote it must match.
        (meta.fingerprint === undefined || meta.fingerprint === current),
    });
    return best && { key: best.meta.key, backend, lcp: best.lcp, ratio: best.ratio, tokens: best.meta.n_tokens, blockCount: best.meta.blocks.length };
  }

  const forgetBackend = (backend: number) => {
    watch.forgetBackend(backend);
    deps.behaviour.forget(backend);
  };
  return { ...deps, ...watch, forgetBackend, pendingByModel: new Map(), inflight: new Set(), ensureBackendKinds, checkSlotCount, diskMatch };
}
