/** The single structured log line of a generation request: what was decided for it and how long each step took. */
import { skipSummary } from '../slots/save-skip.js';
import type { CacheOpResult } from '../slots/slot-cache.js';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import type { SlotPlan } from '../slots/slot-state.js';
import type { ForwardOutcome } from '../generation/forward.js';

/** First 16 hex digits of a cache key: enough to follow one conversation through the log. */
export function shortKey(key: string): string {
  return key.slice(0, 16);
}

/** Milliseconds with two decimals. */
export function roundMs(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Collects what happened to one request for its single log line. */
export class RequestLog {
  /** When the request was sent to the backend (`performance.now()`); undefined while it was not. */
  forwardStarted?: number;
  evictSave?: CacheOpResult;
  /** Saves of other slots before a task start clears them (a backend that clears idle slots). */
  clearingSaves: CacheOpResult[] = [];
  /** What `GET /slots` said of a slot believed to hold the conversation, when it was asked. */
  slotCheck?: string;
  restore?: CacheOpResult;
  save?: CacheOpResult;
  outcome?: ForwardOutcome;
  error?: unknown;
  /** The client API (`chat`, `completion`, `infill`, `responses`…). */
  api?: string;
  /** The session the request named (a header or body field), when it named one. */
  session?: string;

  /**
   * Created the moment the request got its slot. `started` and `acquired` are `performance.now()` readings: the wait
   * is their difference, not the time to the forward minus the save and restore durations, which come from
   * elsewhere and need not add up (that subtraction once logged a negative wait).
   */
  constructor(
    private readonly analysis: PromptAnalysis,
    private readonly plan: SlotPlan,
    private readonly started: number,
    private readonly acquired: number = performance.now(),
  ) {}

  toJSON(backendUrl: string): Record<string, unknown> {
    const { analysis, plan, outcome } = this;
    const decision = plan.resident ? 'resident' : plan.restore ? 'restore' : 'cold';
    return {
      ...(this.api && { api: this.api }),
      model: analysis.model,
      key: shortKey(analysis.key),
      ...(this.session !== undefined && { session: this.session }),
      big: analysis.big,
      words: analysis.wordCount,
      backend: backendUrl,
      slot: plan.slot.id,
      decision,
      ...(plan.restore && { restore_key: shortKey(plan.restore.key), match_ratio: roundMs(plan.restore.ratio) }),
      ...(plan.resident && { match_ratio: roundMs(plan.resident.ratio) }),
      wait_ms: roundMs(this.acquired - this.started),
      ...(this.slotCheck && { slot_check: this.slotCheck }),
      ...(this.evictSave && { evict_save: this.evictSave }),
      ...(this.clearingSaves.length > 0 && { clearing_saves: this.clearingSaves }),
      ...(plan.skippedSave && { evict_skip: skipSummary(plan.skippedSave) }),
      ...(this.restore && { restore: this.restore }),
      ...(this.save && { save: this.save }),
      status: outcome?.status ?? (this.error as { status?: number } | undefined)?.status ?? 500,
      ...(outcome?.clientGone && { client_gone: true }),
      ...(outcome?.timings && { cache_n: outcome.timings.cache_n, prompt_n: outcome.timings.prompt_n }),
      total_ms: roundMs(performance.now() - this.started),
    };
  }
}
