/**
 * What the smart policy learns per model from what the backend reports:
 * - whether a restore is cheaper than prefilling what it would save (measured prefill and restore speeds),
 * - whether re-saving a conversation that extends an entry on disk is cheaper than prefilling its growth again
 *   later (measured prefill and save speeds), and
 * - whether restores bring any reuse at all: sliding-window and hybrid/recurrent models restore "successfully"
 *   but the next request still prefills everything (`timings.cache_n` stays near 0). Such a model stops being
 *   restored after a few tries, and the log says so once.
 */

/** Consecutive useless restores after which a model is no longer restored. */
export const USELESS_RESTORES_LIMIT = 2;

/** Recent prefill speeds kept per model. */
const PREFILL_SAMPLES = 16;

function keepRecent(samples: number[], sample: number): void {
  samples.push(sample);
  if (samples.length > PREFILL_SAMPLES) samples.shift();
}

/** The value at quantile `q` (0..1] of the samples (nearest rank). */
function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length * q) - 1)]!;
}

interface ModelStats {
  /** ms per token of recent prefills: all of them, and those that ran while the server was otherwise idle. */
  prefillAll: number[];
  prefillAlone: number[];
  prefillMsPerToken?: number;
  restoreMsPerToken?: number;
  saveMsPerToken?: number;
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
    if (!s) this.models.set(model, (s = { prefillAll: [], prefillAlone: [], uselessRestores: 0, disabled: false }));
    return s;
  }

  /**
   * Record a request's prefill speed from llama.cpp's `timings` (prompt_ms over prompt_n). `shared`: another slot
   * of the same server was busy meanwhile. Such a prefill shared the GPU, or waited while a save or restore held
   * the server's main loop, so it looks slower than the model is, while saves and restores hold that loop alone.
   * The speed is the median of recent prefills that ran alone, or, while there are none, a low quantile of all.
   */
  notePrefill(model: string, promptN: number | undefined, promptMs: number | undefined, shared = false): void {
    if (!promptN || promptN < 64 || !promptMs || promptMs <= 0) return; // short prefills are dominated by overhead
    const s = this.stats(model);
    const sample = promptMs / promptN;
    keepRecent(s.prefillAll, sample);
    if (!shared) keepRecent(s.prefillAlone, sample);
    s.prefillMsPerToken = s.prefillAlone.length > 0 ? quantile(s.prefillAlone, 0.5) : quantile(s.prefillAll, 0.25);
  }

  /** Record a restore's speed: ms (the server's `restore_ms` when it reports one) over restored tokens. */
  noteRestoreSpeed(model: string, tokens: number | undefined, ms: number): void {
    if (!tokens || tokens <= 0 || !Number.isFinite(ms) || ms < 0) return;
    const s = this.stats(model);
    s.restoreMsPerToken = ewma(s.restoreMsPerToken, ms / tokens);
  }

  /** Record a save's speed: ms (the server's `save_ms` when it reports one) over saved tokens. */
  noteSaveSpeed(model: string, tokens: number | undefined, ms: number): void {
    if (!tokens || tokens <= 0 || !Number.isFinite(ms) || ms < 0) return;
    const s = this.stats(model);
    s.saveMsPerToken = ewma(s.saveMsPerToken, ms / tokens);
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

  /** The speeds learnt so far (ms per token), per model, for the status API. */
  speeds(): Map<
    string,
    { prefillMsPerToken?: number; saveMsPerToken?: number; restoreMsPerToken?: number; restoresEnabled: boolean }
  > {
    const out = new Map<
      string,
      { prefillMsPerToken?: number; saveMsPerToken?: number; restoreMsPerToken?: number; restoresEnabled: boolean }
    >();
    for (const [model, s] of this.models) {
      out.set(model, {
        ...(s.prefillMsPerToken !== undefined && { prefillMsPerToken: s.prefillMsPerToken }),
        ...(s.saveMsPerToken !== undefined && { saveMsPerToken: s.saveMsPerToken }),
        ...(s.restoreMsPerToken !== undefined && { restoreMsPerToken: s.restoreMsPerToken }),
        restoresEnabled: !s.disabled,
      });
    }
    return out;
  }

  /** The measured prefill speed of the model in ms per token, if any. */
  prefillMsPerToken(model: string): number | undefined {
    return this.models.get(model)?.prefillMsPerToken;
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

  /**
   * Writing all `totalTokens` of a slot now, while a request waits, is worth it rather than giving up the
   * `unsavedTokens` it added to an entry on disk and prefilling them again if the conversation comes back (ski
   * rental: skip while the re-prefill would cost less than the save, so the loss stays within about one save).
   * Without both speeds measured, save.
   */
  resaveWorthIt(model: string, totalTokens: number, unsavedTokens: number): boolean {
    const s = this.models.get(model);
    if (s?.prefillMsPerToken === undefined || s.saveMsPerToken === undefined) return true;
    return unsavedTokens * s.prefillMsPerToken >= totalTokens * s.saveMsPerToken;
  }
}
