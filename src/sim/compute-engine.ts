/**
 * The compute of one simulated llama-server process: prefill, decode, and the tasks that run on its main loop
 * (slot save / restore / erase, RAM prompt-cache moves). Chats and slot actions call it once their slot's FIFO
 * (slot.ts) lets them run; the engine is the second, shared constraint. Two models of it:
 * - `shared` (default, shared-engine.ts): one main loop and one GPU per process, as on the real server;
 * - `per-slot` (per-slot-engine.ts): every slot computes on its own at full speed, nothing waits for anything.
 * All durations are model milliseconds; wall time follows them × `timeScale`.
 */
import type { CostModel } from './cost-model.js';
import { PerSlotEngine } from './per-slot-engine.js';
import { SharedEngine } from './shared-engine.js';

/** Which compute model a process uses. */
export type EngineKind = 'shared' | 'per-slot';

/** The compute models, for validation and help texts. */
export const ENGINE_KINDS: readonly EngineKind[] = ['shared', 'per-slot'];

/** Keeps the engine for `modelMs` more model milliseconds, counted from the start of the task it is given to. */
export type Hold = (modelMs: number) => Promise<void>;

/** One process's compute. */
export interface ComputeEngine {
  /**
   * Processes `tokens` prompt tokens of slot `slotId`; `onProgress(done)` is called with the tokens processed so far.
   * Resolves with the model time from the start of the prompt processing to its end (`prompt_ms`); rejects with
   * AbortedError when `signal` fires (the tokens reported to `onProgress` until then were processed).
   */
  prefill(tokens: number, signal: AbortSignal, onProgress: (done: number) => void, slotId?: number): Promise<number>;
  /**
   * Decodes `tokens` tokens, calling `onToken(i)` right after token i (from 0) was decoded. Resolves with the
   * model time from the end of the prompt processing to the last token (`predicted_ms`); rejects with
   * AbortedError when `signal` fires, or with what `onToken` threw.
   */
  generate(tokens: number, signal: AbortSignal, onToken: (i: number) => void): Promise<number>;
  /**
   * Runs `job` as a task of the main loop; it may `hold` the engine for the modelled duration of its work.
   * Resolves or rejects as `job` does.
   */
  task<T>(job: (hold: Hold) => Promise<T>): Promise<T>;
}

/** The engine of a new process. */
export function createEngine(kind: EngineKind, cost: CostModel): ComputeEngine {
  return kind === 'per-slot' ? new PerSlotEngine(cost) : new SharedEngine(cost);
}
