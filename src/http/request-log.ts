/** The single structured log line of a generation request: what was decided for it and how long each step took. */
import { skipSummary } from '../slots/save-skip.js';
import type { CacheOpResult } from '../slots/slot-cache.js';
import type { PromptAnalysis } from '../prompt/prompt-analysis.js';
import type { SlotPlan } from '../slots/slot-state.js';
import type { ForwardOutcome } from '../generation/forward.js';
import { shortKey } from '../cache/meta-file.js';

/**
 * What the proxy decided for a request: the slot held its conversation (`resident`), an entry was restored into
 * it (`restore`), a big prompt started from nothing (`cold`), a prompt too small to cache (`small`), no slot
 * became free in time (`no_slot`), or the client left while waiting for one (`client_gone`).
 */
export type ChatDecision = 'resident' | 'restore' | 'server_cache' | 'cold' | 'small' | 'no_slot' | 'client_gone';

/** The `chat` log line: one per request. The observation module (src/observe/) records exactly these. */
export interface ChatLogLine {
  /** The client API (`chat`, `completion`, `infill`, `responses`, `messages`). */
  api?: string;
  model: string;
  /** The session the request named (a header or body field), when it named one. */
  session?: string;
  /** First 16 hex digits of the prompt's key. */
  key: string;
  decision: ChatDecision;
  status: number;
  big?: boolean;
  words?: number;
  /** URL of the backend that served it (absent when no slot was found). */
  backend?: string;
  /** The slot it ran on; absent when it went without a pin and the proxy did not look for (or find) the slot. */
  slot?: number;
  /** Kept from before `decision` existed on these lines: 'no_slot' or 'client_gone_while_waiting'. */
  outcome?: string;
  restore_key?: string;
  match_ratio?: number;
  wait_ms?: number;
  /** A big request: how long it let the small prompts on their way start first (small-prompts-first.ts). */
  small_first_ms?: number;
  /**
   * On a backend that clears idle slots: from getting the slot (and letting small prompts start first) until its
   * launch's turn came (one launch at a time).
   */
  gate_ms?: number;
  /** From arrival until the task was sent to the backend: the wait, the saves, the restore, the checks. */
  sent_ms?: number;
  /** From arrival until the backend's answer began (for a stream, its prompt was processed). */
  first_byte_ms?: number;
  slot_check?: string;
  evict_save?: CacheOpResult;
  clearing_saves?: CacheOpResult[];
  evict_skip?: Record<string, unknown>;
  restore?: CacheOpResult;
  save?: CacheOpResult;
  client_gone?: true;
  cache_n?: number;
  prompt_n?: number;
  prompt_ms?: number;
  total_ms?: number;
}

/** The line of a request that never got a slot: it waited `waitMs`, then timed out or its client left. */
export function unplacedLine(
  analysis: Pick<PromptAnalysis, 'model' | 'key' | 'big'>,
  decision: 'no_slot' | 'client_gone',
  status: number,
  waitMs: number,
): ChatLogLine {
  return {
    model: analysis.model,
    key: shortKey(analysis.key),
    decision,
    outcome: decision === 'no_slot' ? 'no_slot' : 'client_gone_while_waiting',
    status,
    big: analysis.big,
    wait_ms: roundMs(waitMs),
    total_ms: roundMs(waitMs),
  };
}

/** Milliseconds with two decimals. */
function roundMs(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Collects what happened to one request for its single log line. */
export class RequestLog {
  /** A big request: milliseconds it waited for the small prompts on their way to start (0 when none was). */
  smallFirstMs?: number;
  /** When the request's turn to launch came (`performance.now()`), on a backend that clears idle slots. */
  gatePassed?: number;
  /** When the request was sent to the backend (`performance.now()`); undefined while it was not. */
  forwardStarted?: number;
  /** When the backend's answer began (`performance.now()`). */
  firstByte?: number;
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
  /** Sent without a pin, and its slot was not found (SlotPlan.unpinned, placeUnpinnedTask). */
  slotUnknown?: true;

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

  toJSON(backendUrl: string): ChatLogLine {
    const { analysis, plan, outcome } = this;
    const decision: ChatDecision = plan.resident
      ? 'resident'
      : plan.restore
        ? 'restore'
        : plan.fromServerCache
          ? 'server_cache'
          : analysis.big
            ? 'cold'
            : 'small';
    return {
      ...(this.api && { api: this.api }),
      model: analysis.model,
      key: shortKey(analysis.key),
      ...(this.session !== undefined && { session: this.session }),
      big: analysis.big,
      words: analysis.wordCount,
      backend: backendUrl,
      ...(!this.slotUnknown && { slot: plan.slot.id }),
      decision,
      ...(plan.restore && { restore_key: shortKey(plan.restore.key), match_ratio: roundMs(plan.restore.ratio) }),
      ...(plan.resident && { match_ratio: roundMs(plan.resident.ratio) }),
      wait_ms: roundMs(this.acquired - this.started),
      ...(this.smallFirstMs && { small_first_ms: roundMs(this.smallFirstMs) }),
      ...(this.gatePassed !== undefined && {
        gate_ms: roundMs(this.gatePassed - this.acquired - (this.smallFirstMs ?? 0)),
      }),
      ...(this.forwardStarted !== undefined && { sent_ms: roundMs(this.forwardStarted - this.started) }),
      ...(this.firstByte !== undefined && { first_byte_ms: roundMs(this.firstByte - this.started) }),
      ...(this.slotCheck && { slot_check: this.slotCheck }),
      ...(this.evictSave && { evict_save: this.evictSave }),
      ...(this.clearingSaves.length > 0 && { clearing_saves: this.clearingSaves }),
      ...(plan.skippedSave && { evict_skip: skipSummary(plan.skippedSave) }),
      ...(this.restore && { restore: this.restore }),
      ...(this.save && { save: this.save }),
      status: outcome?.status ?? (this.error as { status?: number } | undefined)?.status ?? 500,
      ...(outcome?.clientGone && { client_gone: true }),
      ...(outcome?.timings && {
        cache_n: outcome.timings.cache_n,
        prompt_n: outcome.timings.prompt_n,
        prompt_ms: outcome.timings.prompt_ms,
      }),
      total_ms: roundMs(performance.now() - this.started),
    };
  }
}
