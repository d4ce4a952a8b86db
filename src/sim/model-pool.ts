/**
 * The set of configured models behind llama-swap or the router, and which of them run. Loads are serialised
 * (one swap at a time); loading a model beyond `maxRunning` stops the least recently used running one first,
 * either gracefully (llama-swap's swap waits for that model's requests in flight) or at once (router LRU,
 * explicit unloads). Requests hold a lease on the instance they use, so a graceful stop never cuts them.
 */
import type { InstanceConfig } from './model-instance.js';
import { ModelInstance } from './model-instance.js';
import type { SimRecorder } from './sim-events.js';

interface Entry {
  config: InstanceConfig;
  instance: ModelInstance | undefined;
  lastUsed: number;
  leases: number;
  drained: (() => void)[];
}

/** A model in use by one request; call `release` when the answer is complete. */
export interface Lease {
  instance: ModelInstance;
  release(): void;
}

/** Running state of a configured model. */
export type PoolStatus = 'loaded' | 'loading' | 'unloaded';

/** Configured models and the instances that run them. */
export class ModelPool {
  private readonly entries = new Map<string, Entry>();
  private lock: Promise<unknown> = Promise.resolve();
  private clock = 0;

  /**
   * @param configs one per configured model, keyed by `config.id`
   * @param maxRunning how many may run at once (llama-swap default 1, router `--models-max` default 4)
   * @param gracefulSwap true: a model stopped to make room first finishes its requests in flight
   */
  constructor(
    configs: readonly InstanceConfig[],
    private readonly recorder: SimRecorder,
    private readonly maxRunning: number,
    private readonly gracefulSwap: boolean,
  ) {
    for (const config of configs) {
      this.entries.set(config.id, { config, instance: undefined, lastUsed: 0, leases: 0, drained: [] });
    }
  }

  /** Configured model ids, in configuration order. */
  ids(): string[] {
    return [...this.entries.keys()];
  }

  /** True for a configured model. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The configuration of a model. */
  config(id: string): InstanceConfig | undefined {
    return this.entries.get(id)?.config;
  }

  /** The running (or loading) instance of a model. */
  instance(id: string): ModelInstance | undefined {
    return this.entries.get(id)?.instance;
  }

  /** Whether a model is loaded, loading, or not running. */
  status(id: string): PoolStatus {
    const inst = this.entries.get(id)?.instance;
    if (!inst) return 'unloaded';
    return inst.state === 'ready' ? 'loaded' : 'loading';
  }

  /**
   * Takes a lease on a model, starting it first (and stopping others beyond maxRunning) when it is not running.
   * `touch` refreshes the model's last use (the router does so for POST requests only).
   */
  acquire(id: string, touch = true): Promise<Lease> {
    const e = this.entries.get(id);
    if (!e) return Promise.reject(new Error(`unknown model ${id}`));
    const run = this.lock.then(async () => {
      if (!e.instance) await this.start(e);
      const instance = e.instance!;
      e.leases++;
      if (touch) e.lastUsed = ++this.clock;
      let released = false;
      return {
        instance,
        release: () => {
          // A lease on an instance that was killed meanwhile no longer counts.
          if (released || e.instance !== instance) return;
          released = true;
          e.leases--;
          if (e.leases === 0) for (const w of e.drained.splice(0)) w();
        },
      };
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Starts a model that is not running (router `/models/load`); resolves when it is ready. */
  async load(id: string): Promise<void> {
    (await this.acquire(id)).release();
  }

  /** Stops a model at once: its requests in flight lose their connection. False when it was not running. */
  unload(id: string): boolean {
    const e = this.entries.get(id);
    if (!e?.instance) return false;
    this.stop(e);
    return true;
  }

  /** Stops every running model at once (llama-swap `/unload`, restart). */
  unloadAll(): void {
    for (const e of this.entries.values()) if (e.instance) this.stop(e);
  }

  private async start(e: Entry): Promise<void> {
    const running = [...this.entries.values()].filter((x) => x.instance && x !== e);
    running.sort((a, b) => a.lastUsed - b.lastUsed);
    while (running.length >= this.maxRunning && running.length > 0) {
      const victim = running.shift()!;
      if (this.gracefulSwap && victim.leases > 0) await new Promise<void>((r) => victim.drained.push(r));
      if (victim.instance) this.stop(victim);
    }
    const inst = new ModelInstance(e.config, this.recorder);
    e.instance = inst;
    e.lastUsed = ++this.clock;
    await inst.load();
    if (e.instance !== inst || inst.state !== 'ready')
      throw new Error(`model ${e.config.id} was stopped while loading`);
    this.recorder.record({ type: 'load', model: e.config.id });
  }

  private stop(e: Entry): void {
    e.instance!.kill();
    e.instance = undefined;
    e.leases = 0;
    this.recorder.record({ type: 'unload', model: e.config.id });
    for (const w of e.drained.splice(0)) w();
  }
}
