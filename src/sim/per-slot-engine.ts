/**
 * The simulator's first compute model (`--engine per-slot`): every piece of work runs on its own at the full
 * modelled speed, so two slots prefill in parallel, and a save or restore never holds up the other slots.
 */
import type { ComputeEngine, Hold } from './compute-engine.js';
import { Pacer, type CostModel } from './cost-model.js';

/** Work paced on its own; nothing is shared between slots. */
export class PerSlotEngine implements ComputeEngine {
  constructor(private readonly cost: CostModel) {}

  async prefill(tokens: number, signal: AbortSignal, onProgress: (done: number) => void): Promise<number> {
    const per = this.cost.prefillMsPerToken;
    const pacer = new Pacer(this.cost.timeScale);
    try {
      await pacer.advance(tokens * per, signal);
    } catch (err) {
      // What the wall clock covered before the client left was processed.
      onProgress(per > 0 ? Math.floor(pacer.elapsedModelMs() / per) : 0);
      throw err;
    }
    onProgress(tokens);
    return tokens * per;
  }

  async generate(tokens: number, signal: AbortSignal, onToken: (i: number) => void): Promise<number> {
    const pacer = new Pacer(this.cost.timeScale);
    for (let i = 0; i < tokens; i++) {
      await pacer.advance(this.cost.decodeMsPerToken, signal);
      onToken(i);
    }
    return tokens * this.cost.decodeMsPerToken;
  }

  task<T>(job: (hold: Hold) => Promise<T>): Promise<T> {
    const pacer = new Pacer(this.cost.timeScale);
    return job((ms) => pacer.advance(ms));
  }
}
