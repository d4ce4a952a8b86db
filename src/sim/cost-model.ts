/**
 * The simulator's cost model. Every operation has a *model* cost in milliseconds (what llama-server would report
 * in `timings`) and a *wall* cost = model cost × timeScale (what the simulator actually sleeps). Tests use
 * timeScale 0 to get realistic numbers in the answers without waiting for them.
 */

/** Costs of the simulated hardware; all per-unit figures are in model milliseconds. */
export interface CostModel {
  /** Prompt processing per token. */
  prefillMsPerToken: number;
  /** Generation per produced token; one step decodes a token for every generating slot of the server at once. */
  decodeMsPerToken: number;
  /**
   * Prompt tokens one engine iteration takes (llama-server's `-b`, `n_batch`), from the prefilling slots in slot-id
   * order; an integer >= 1.
   */
  batchTokens: number;
  /** KV-cache bytes per token: sizes save files and the RAM prompt cache. */
  kvBytesPerToken: number;
  /** Writing a save file, per MB (10^6 bytes). */
  saveMsPerMB: number;
  /** Reading a save file, per MB. */
  restoreMsPerMB: number;
  /** Copying a RAM prompt-cache entry back into a slot, per MB. */
  ramLoadMsPerMB: number;
  /** Starting a model (llama-swap / router load, restart). */
  modelLoadMs: number;
  /** Wall time = model time × timeScale; 0 means never sleep. */
  timeScale: number;
}

/** Defaults: a large model on a fast machine (30B f16-like KV of 100 KB per token, 2 GB/s disk). */
export const DEFAULT_COST_MODEL: Readonly<CostModel> = Object.freeze({
  prefillMsPerToken: 0.25,
  decodeMsPerToken: 20,
  batchTokens: 2048,
  kvBytesPerToken: 100_000,
  saveMsPerMB: 0.5,
  restoreMsPerMB: 0.5,
  ramLoadMsPerMB: 0.1,
  modelLoadMs: 5000,
  timeScale: 1,
});

/** Fills a partial cost model with the defaults and rejects negative or non-finite values. */
export function resolveCostModel(partial: Partial<CostModel> = {}): CostModel {
  const cost: CostModel = { ...DEFAULT_COST_MODEL };
  for (const key of Object.keys(DEFAULT_COST_MODEL) as (keyof CostModel)[]) {
    const value = partial[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new RangeError(`cost.${key} must be a finite number >= 0, got ${String(value)}`);
    }
    cost[key] = value;
  }
  if (!Number.isInteger(cost.batchTokens) || cost.batchTokens < 1) {
    throw new RangeError(`cost.batchTokens must be an integer >= 1, got ${String(cost.batchTokens)}`);
  }
  return cost;
}

/** Model milliseconds to move `bytes` at `msPerMB`. */
export function transferMs(bytes: number, msPerMB: number): number {
  return (bytes / 1e6) * msPerMB;
}

/** Rounds model milliseconds to microseconds, as llama-server prints its timings. */
export function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Thrown by `sleepScaled` when its signal fires. */
export class AbortedError extends Error {
  constructor() {
    super('aborted');
    this.name = 'AbortedError';
  }
}

/**
 * Sleeps `modelMs × timeScale` wall milliseconds; rejects with AbortedError as soon as `signal` fires.
 * A zero wall time still yields once to the event loop so that aborts and other requests get a turn.
 */
export function sleepScaled(modelMs: number, timeScale: number, signal?: AbortSignal): Promise<void> {
  const wallMs = modelMs * timeScale;
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = (): void => {
      clear();
      reject(new AbortedError());
    };
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(new AbortedError());
      else resolve();
    };
    const handle = wallMs >= 1 ? setTimeout(done, wallMs) : setImmediate(done);
    const clear = (): void => {
      if (wallMs >= 1) clearTimeout(handle as NodeJS.Timeout);
      else clearImmediate(handle as NodeJS.Immediate);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Paces a sequence of small costs against the wall clock: instead of sleeping every sub-millisecond step (timers
 * round up to 1 ms), it sleeps until the accumulated target time, so 1000 steps of 0.1 ms take ~100 ms.
 */
export class Pacer {
  private readonly start = performance.now();
  private modelMs = 0;

  constructor(private readonly timeScale: number) {}

  /** Adds `modelMs` of work and waits until the wall clock has caught up with the total. */
  async advance(modelMs: number, signal?: AbortSignal): Promise<void> {
    this.modelMs += modelMs;
    const due = this.start + this.modelMs * this.timeScale - performance.now();
    await sleepScaled(Math.max(0, due), 1, signal);
  }

  /** Model milliseconds of work the wall clock has covered so far (how far a prefill got when it was aborted). */
  elapsedModelMs(): number {
    if (this.timeScale === 0) return 0;
    return Math.min(this.modelMs, (performance.now() - this.start) / this.timeScale);
  }
}
