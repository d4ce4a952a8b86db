/**
 * A faithful simulator of llama-server, llama-swap and llama-server router mode for tests, benchmarks and demos:
 * real HTTP on loopback, real (sparse) save files, per-slot token state with real prefix-reuse accounting, and a
 * configurable cost model. `startSimulator` starts one in-process and returns a handle to inspect and steer it.
 */
import { mkdir } from 'node:fs/promises';
import { startHttpFront } from './http-front.js';
import type { Exchange } from './http-io.js';
import { LlamaServerSim } from './llama-server-sim.js';
import { LlamaSwapSim } from './llama-swap-sim.js';
import { ModelInstance } from './model-instance.js';
import { ModelPool } from './model-pool.js';
import { RouterSim } from './router-sim.js';
import { instanceConfigs, type SimOptions } from './sim-config.js';
import { SimRecorder, type Fault, type SimEvent, type SimStats } from './sim-events.js';

export type { CostModel } from './cost-model.js';
export { DEFAULT_COST_MODEL } from './cost-model.js';
export { MEASURED_CPU_SERVER, costRatioOf, parseCostRatio, withCostRatio } from './cost-calibration.js';
export type { CostRatio, MeasuredCosts } from './cost-calibration.js';
export type { SimModelOptions, SimOptions } from './sim-config.js';
export type { ChatEvent, Fault, FaultAction, SimEvent, SimStats, SlotFileEvent } from './sim-events.js';

/** A running simulator. */
export interface SimHandle {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  readonly port: number;
  /** Every chat, save, restore, erase, load, unload, RAM-cache hit and injected fault, in order. */
  readonly events: SimEvent[];
  /** Running totals over the events. */
  stats(): SimStats;
  /** The next `times` (default 1) calls of `action` fail with `status` in llama-server's error shape. */
  injectFault(fault: Fault): void;
  /** Drops all slots, RAM caches, loaded models and open connections; keeps the files and the port. */
  restart(): Promise<void>;
  /** A copy of the tokens in a slot; undefined when the model is not loaded or the slot does not exist. */
  slotTokens(model: string, slot: number): string[] | undefined;
  /** Ids of the models currently loaded (ready). */
  loadedModels(): string[];
  /** Stops the simulator and closes its port. */
  close(): Promise<void>;
}

/** The mode-specific part of a simulator. */
interface Backend {
  handle(ex: Exchange): Promise<void>;
  instance(model: string): ModelInstance | undefined;
  loaded(): string[];
  stopAll(): void;
  /** Called after the connections were dropped. */
  startAgain(): Promise<void>;
}

function poolBackend(pool: ModelPool, handle: (ex: Exchange) => Promise<void>): Backend {
  return {
    handle,
    instance: (model) => pool.instance(model),
    loaded: () => pool.ids().filter((id) => pool.status(id) === 'loaded'),
    stopAll: () => pool.unloadAll(),
    startAgain: async () => undefined,
  };
}

/** Starts a simulator; resolves once it listens (and, in llama-server mode, once the model is loaded). */
export async function startSimulator(options: SimOptions): Promise<SimHandle> {
  const configs = instanceConfigs(options);
  // Like a user who created --slot-save-path before starting the server: saves need the directory.
  if (options.slotSavePath) await mkdir(options.slotSavePath, { recursive: true });
  const recorder = new SimRecorder();
  let backend: Backend;
  let firstStart: () => Promise<void> = async () => undefined;
  if (options.mode === 'llama-server') {
    const sim = new LlamaServerSim(() => new ModelInstance(configs[0]!, recorder));
    firstStart = () => sim.start();
    backend = {
      handle: (ex) => sim.handle(ex),
      instance: (model) => (model === configs[0]!.id && sim.instance.state !== 'stopped' ? sim.instance : undefined),
      loaded: () => (sim.instance.state === 'ready' ? [configs[0]!.id] : []),
      stopAll: () => sim.stop(),
      startAgain: () => sim.restart(),
    };
  } else if (options.mode === 'llama-swap') {
    const pool = new ModelPool(configs, recorder, options.maxRunning ?? 1, true);
    const sim = new LlamaSwapSim(pool);
    backend = poolBackend(pool, (ex) => sim.handle(ex));
  } else if (options.mode === 'router') {
    const modelsMax = options.modelsMax ?? 4;
    // An LRU stop waits for the requests in flight, as llama-swap's (checked on the real router: a 3,000-token
    // generation on one model ended, 5.2 s, before a request for another one unloaded it).
    const pool = new ModelPool(configs, recorder, modelsMax, true);
    const sim = new RouterSim(pool, modelsMax);
    backend = poolBackend(pool, (ex) => sim.handle(ex));
  } else {
    throw new RangeError(`mode must be llama-server, llama-swap or router, got ${String(options.mode)}`);
  }

  const front = await startHttpFront({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    llamaConnection: options.mode !== 'llama-swap',
    handle: (ex) => backend.handle(ex),
  });
  await firstStart();

  return {
    url: front.url,
    port: front.port,
    events: recorder.events,
    stats: () => recorder.stats(),
    injectFault: (fault) => recorder.injectFault(fault),
    restart: async () => {
      if (options.mode !== 'llama-server') backend.stopAll();
      front.dropConnections();
      await backend.startAgain();
    },
    slotTokens: (model, slot) => {
      const inst = backend.instance(model);
      const s = inst?.state === 'ready' ? inst.slots[slot] : undefined;
      return s ? [...s.tokens] : undefined;
    },
    loadedModels: () => backend.loaded(),
    close: async () => {
      backend.stopAll();
      await front.close();
    },
  };
}
