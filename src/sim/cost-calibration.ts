/**
 * What the cost model stands for on real hardware. What matters to a cache policy is the cost of saving and
 * restoring a token relative to prefilling it: on the CPU test server a restore is almost free, on a GPU with a
 * 30B model it is about a tenth of the prefill, on slow disks more. `withCostRatio` moves the default model to
 * any such ratio; `MEASURED_CPU_SERVER` holds the figures measured on the shared llama-server build
 * (`npm run bench -- --real` measures them again and writes them into its results).
 */
import { transferMs } from './cost-model.js';
import type { CostModel } from './cost-model.js';

/** Per-token costs as the real server reports them (model milliseconds = real milliseconds there). */
export interface MeasuredCosts {
  prefillMsPerToken: number;
  kvBytesPerToken: number;
  saveMsPerToken: number;
  restoreMsPerToken: number;
  /** How and where they were measured. */
  source: string;
}

/**
 * The portable llama-server (llama.cpp 3f545bec, CPU, AVX2) with tiny-chat.gguf on the 2-vCPU development machine,
 * measured by bench/calibrate.ts at the start of a `--real` run (medians of 5 samples of a ~3.9k-token prompt:
 * timings.prompt_ms / prompt_n, save_ms / n_saved, restore_ms / n_restored, n_written / n_saved; flash attention
 * at its default) while other jobs shared the CPU: 8,528 prefill tokens/s. The quiet-machine figures in the build's VERSION file (6.5k tokens/s, a 4,116-token save in ~9
 * ms, restore in ~3.5 ms) give ratios of the same order: restore/prefill 0.0055, save/prefill 0.014.
 */
export const MEASURED_CPU_SERVER: Readonly<MeasuredCosts> = Object.freeze({
  prefillMsPerToken: 0.11726,
  kvBytesPerToken: 4112,
  saveMsPerToken: 0.00179,
  restoreMsPerToken: 0.000548,
  source: 'bench/calibrate.ts on the shared llama-server build, 2026-11-29, 2 vCPUs shared with other jobs',
});

/** A named point on the save/restore-to-prefill scale. */
export interface CostRatio {
  name: string;
  /** Restore cost per token ÷ prefill cost per token. */
  restoreToPrefill: number;
  /** Save cost per token ÷ prefill cost per token. */
  saveToPrefill: number;
}

/** `cpu` (as measured on the CPU server) or a number: restore and save both at that ratio (a GPU: ~0.1). */
export function parseCostRatio(text: string): CostRatio {
  if (text === 'cpu') {
    const m = MEASURED_CPU_SERVER;
    return {
      name: 'cpu',
      restoreToPrefill: m.restoreMsPerToken / m.prefillMsPerToken,
      saveToPrefill: m.saveMsPerToken / m.prefillMsPerToken,
    };
  }
  const ratio = Number(text);
  if (text.trim() === '' || !Number.isFinite(ratio) || ratio < 0)
    throw new RangeError(`a cost ratio is "cpu" or a number >= 0, not "${text}"`);
  return { name: text, restoreToPrefill: ratio, saveToPrefill: ratio };
}

/** Restore and save cost per token ÷ prefill cost per token of a cost model. */
export function costRatioOf(cost: CostModel): Omit<CostRatio, 'name'> {
  const perToken = (msPerMB: number) => transferMs(cost.kvBytesPerToken, msPerMB);
  return {
    restoreToPrefill: perToken(cost.restoreMsPerMB) / cost.prefillMsPerToken,
    saveToPrefill: perToken(cost.saveMsPerMB) / cost.prefillMsPerToken,
  };
}

/**
 * The cost model with save and restore speeds set to the ratio; prefill, decode and KV size stay. Loading from
 * the RAM cache is never slower than restoring from disk.
 */
export function withCostRatio(cost: CostModel, ratio: CostRatio): CostModel {
  const msPerMB = (toPrefill: number) => (toPrefill * cost.prefillMsPerToken * 1e6) / cost.kvBytesPerToken;
  const restoreMsPerMB = msPerMB(ratio.restoreToPrefill);
  return {
    ...cost,
    saveMsPerMB: msPerMB(ratio.saveToPrefill),
    restoreMsPerMB,
    ramLoadMsPerMB: Math.min(cost.ramLoadMsPerMB, restoreMsPerMB),
  };
}
