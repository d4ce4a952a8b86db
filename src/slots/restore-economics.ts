/**
 * Two things the smart policy learns per model from what the backend reports:
 * - whether a restore is cheaper than prefilling what it would save (measured prefill and restore speeds), and
 * - whether restores bring any reuse at all: sliding-window and hybrid/recurrent models restore "successfully"
 *   but the next request still prefills everything (`timings.cache_n` stays near 0). Such a model stops being
 *   restored after a few tries, and the log says so once.
 */

/** Consecutive useless restores after which a model is no longer restored. */
export const USELESS_RESTORES_LIMIT = 2;

interface ModelStats {
  prefillMsPerToken?: number;
  restoreMsPerToken?: number;
  uselessRestores: number;
  disabled: boolean;
}

/** Exponentially weighted mean: recent measurements count most, one outlier does not flip a decision. */
function ewma(previous: number | undefined, sample: number): number {
  return previous === undefined ? sample : previous * 0.7 + sample * 0.3;
}

export class RestoreEconomics {
  private readonly models = new Map<string, ModelStats>();

  private stats(model: string): ModelStats {
    let s = this.models.get(model);
    if (!s) this.models.set(model, (s = { uselessRestores: 0, disabled: false }));
    return s;
  }

  /** Record a request's prefill speed from llama.cpp's `timings` (prompt_ms over prompt_n). */
  notePrefill(model: string, promptN: number | undefined, promptMs: number | undefined): void {
    if (!promptN || promptN < 64 || !promptMs || promptMs <= 0) return; // short prefills are dominated by overhead
    const s = this.stats(model);
    s.prefillMsPerToken = ewma(s.prefillMsPerToken, promptMs / promptN);
  }

  /** Record a restore's speed (wall ms over restored tokens). */
  noteRestoreSpeed(model: string, tokens: number | undefined, ms: number): void {
    if (!tokens || tokens <= 0) return;
    const s = this.stats(model);
    s.restoreMsPerToken = ewma(s.restoreMsPerToken, ms / tokens);
  }

  /**
   * Judge a restore by the request that followed it: `cacheN` tokens were reused out of `restoredTokens`
   * restored. Returns 'disabled' the first time the model crosses the limit (the caller logs it once).
   */
  noteRestoreOutcome(model: string, restoredTokens: number, cacheN: number | undefined): 'ok' | 'useless' | 'disabled' {
    const s = this.stats(model);
    const useless = cacheN !== undefined && restoredTokens > 0 && cacheN < Math.min(restoredTokens, 64) / 2;
    if (!useless) {
      s.uselessRestores = 0;
      return 'ok';
    }
    s.uselessRestores++;
    if (!s.disabled && s.uselessRestores >= USELESS_RESTORES_LIMIT) {
      s.disabled = true;
      return 'disabled';
    }
    return 'useless';
  }

  /** Restores are worth trying for this model at all. */
  restoresEnabled(model: string): boolean {
    return !this.models.get(model)?.disabled;
  }

  /**
   * Restoring `restoreTokens` tokens to avoid prefilling `gainTokens` is worth it. Without measurements it is
   * assumed to be (on real hardware a restore is one to two orders of magnitude cheaper than a prefill).
   */
  restoreWorthIt(model: string, restoreTokens: number, gainTokens: number): boolean {
    if (gainTokens <= 0) return false;
    const s = this.models.get(model);
    if (s?.prefillMsPerToken === undefined || s.restoreMsPerToken === undefined) return true;
    return restoreTokens * s.restoreMsPerToken < gainTokens * s.prefillMsPerToken;
  }
}
