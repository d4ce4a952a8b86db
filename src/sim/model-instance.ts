/**
 * The state of one running llama-server process for one model: its slots, its RAM prompt cache, its compute
 * engine, its task counter and the requests in flight. Killing the instance (unload, swap, restart) drops all of
 * it, like killing the process does; save files on disk survive.
 */
import { createEngine, type ComputeEngine, type EngineKind } from './compute-engine.js';
import type { CostModel } from './cost-model.js';
import { sleepScaled } from './cost-model.js';
import type { Exchange } from './http-io.js';
import { RamPromptCache } from './ram-cache.js';
import { modelFingerprint } from './save-file.js';
import type { SimRecorder } from './sim-events.js';
import { SlotScheduler } from './slot-scheduler.js';
import { Slot } from './slot.js';
import { Vocabulary } from './tokenizer.js';

/** Everything one simulated llama-server process is started with. */
export interface InstanceConfig {
  /** The model name (llama-swap / router id); used in events. */
  id: string;
  /** `-a`: the name the server reports; undefined = none, then `/v1/models` shows the path. */
  alias: string | undefined;
  /** `-m`: the model path. */
  path: string;
  nSlots: number;
  /** Context per slot (`meta.n_ctx`, `/props` default_generation_settings.n_ctx). */
  nCtx: number;
  sizeBytes: number;
  ftype: string;
  restoreGivesNoReuse: boolean;
  /** The generated tokens a slot keeps are not what the reply's text tokenizes to (see SimModelOptions). */
  replyTextTokenizesDifferently: boolean;
  slotSavePath: string | undefined;
  cacheRamMiB: number;
  cacheIdleSlots: boolean;
  kvUnified: boolean;
  noSlots: boolean;
  similarity: number;
  cost: CostModel;
  /** How prefill, decode and slot actions share the process's compute (compute-engine.ts). */
  engine: EngineKind;
  /** `--api-key`: keys a request must present (api-key.ts); empty = no check. */
  apiKeys: readonly string[];
}

/** Lifecycle of an instance: loading (503 everywhere), ready, or stopped (killed). */
export type InstanceState = 'loading' | 'ready' | 'stopped';

interface Active {
  controller: AbortController;
  ex: Exchange;
}

/** One simulated llama-server process. */
export class ModelInstance {
  readonly slots: Slot[];
  readonly scheduler: SlotScheduler;
  readonly ram: RamPromptCache;
  /** The process's compute: its main loop and GPU. */
  readonly engine: ComputeEngine;
  readonly vocab = new Vocabulary();
  readonly fingerprint: string;
  state: InstanceState = 'loading';
  private taskCounter = 0;
  private lruClock = 0;
  private readonly active = new Set<Active>();
  private readonly stopped = new AbortController();
  private drainWaiters: (() => void)[] = [];

  constructor(
    readonly config: InstanceConfig,
    readonly recorder: SimRecorder,
  ) {
    this.slots = Array.from({ length: config.nSlots }, (_, i) => new Slot(i, () => this.scheduler.wake()));
    this.scheduler = new SlotScheduler(this.slots, config.similarity);
    this.ram = new RamPromptCache(config.cacheRamMiB * 1024 * 1024, config.cost.kvBytesPerToken);
    this.engine = createEngine(config.engine, config.cost);
    this.fingerprint = modelFingerprint(config.path, config.alias);
  }

  /** The name the server reports: the alias, else the model path. */
  get name(): string {
    return this.config.alias ?? this.config.path;
  }

  /** Number of requests currently being served. */
  get inflight(): number {
    return this.active.size;
  }

  /** Simulates loading the weights (modelLoadMs); resolves when ready, or when killed meanwhile. */
  async load(): Promise<void> {
    try {
      await sleepScaled(this.config.cost.modelLoadMs, this.config.cost.timeScale, this.stopped.signal);
      if (this.state === 'loading') this.state = 'ready';
    } catch {
      // killed while loading
    }
  }

  /**
   * Whether a state of `tokens` can be loaded into `slot` (a restore, a RAM-cache load): on a unified KV buffer
   * (`n_ctx` cells shared by every slot) only beside what the other slots hold, whose cells are not freed for it;
   * the slot's own are. With a KV buffer per slot, when it fits the slot's context.
   */
  fitsBeside(slot: Slot, tokens: number): boolean {
    const others = this.config.kvUnified
      ? this.slots.reduce((sum, other) => (other === slot ? sum : sum + other.tokens.length), 0)
      : 0;
    return others + tokens <= this.config.nCtx;
  }

  /** The next task id (`id_task` in `/slots`). */
  nextTaskId(): number {
    return ++this.taskCounter;
  }

  /** The next value of the slots' LRU clock. */
  tick(): number {
    return ++this.lruClock;
  }

  /**
   * Registers a request in flight; the returned signal fires when the client goes away or the instance is
   * killed. Call `done` when the answer is complete.
   */
  track(ex: Exchange): { signal: AbortSignal; done: () => void } {
    const entry: Active = { controller: new AbortController(), ex };
    this.active.add(entry);
    const onClose = (): void => {
      if (!ex.res.writableFinished) entry.controller.abort();
    };
    ex.res.on('close', onClose);
    if (this.state === 'stopped') entry.controller.abort();
    return {
      signal: entry.controller.signal,
      done: () => {
        ex.res.off('close', onClose);
        this.active.delete(entry);
        this.notifyDrained();
      },
    };
  }

  /** Kills the process: aborts every task, drops the connections of requests in flight, forgets all state. */
  kill(): void {
    this.state = 'stopped';
    this.stopped.abort();
    for (const a of this.active) {
      a.controller.abort();
      a.ex.res.destroy();
    }
    this.active.clear();
    for (const s of this.slots) s.clear();
    this.ram.clear();
    this.notifyDrained();
  }

  /** Resolves once no request is in flight (a graceful stop). */
  drain(): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private notifyDrained(): void {
    if (this.active.size > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
