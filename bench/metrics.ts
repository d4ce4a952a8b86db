/** Turns per-request results into the numbers the benchmark reports. */
import type { RequestResult } from './driver.js';
import type { SlotActionCounts } from './backend.js';
import type { Job, Workload } from './workloads.js';
import type { AgentMetrics } from './agent-metrics.js';

export interface ConfigMetrics {
  /** What the backend prefilled: for the clients' requests, and for the proxy's replays (`replay_prefill_tokens`). */
  prefill_tokens: number;
  reused_tokens: number;
  /** The conversations' turns' prefill, their replays' included. */
  conversation_prefill_tokens: number;
  /** Prefilled by the proxy's rescues from the server's RAM cache (a replay re-prefills what its text does not reuse). */
  replay_prefill_tokens: number;
  ttft_mean_ms: number;
  ttft_p50_ms: number;
  ttft_p95_ms: number;
  /** Mean time to first token of the conversations' turns and of the small requests apart: where a gap lives. */
  ttft_turn_mean_ms: number;
  ttft_small_mean_ms?: number;
  wall_ms: number;
  saves: number;
  restores: number;
  bytes_written: number;
  bytes_read: number;
  disk_bytes_final: number;
  /**
   * Growth the proxy chose to let go at evictions rather than save (smart policy's re-save economics): an upper
   * bound of what it prefills above the ideal on purpose, since a later turn prefills that growth again.
   */
  skipped_growth_tokens: number;
  proxy_cpu_s: number;
  proxy_rss_mb: number;
  /** agents workload only (simulator): the main conversations' prefill and what side requests displaced. */
  agents?: AgentMetrics;
  /** overhead workload only: wall-clock ms per request and streamed tokens per second. */
  latency_p50_ms?: number;
  stream_tokens_per_s?: number;
}

/** Sum of prompt_n (what the backend really prefilled) and cache_n (what it reused). */
export function tokenTotals(results: readonly RequestResult[]) {
  let prefill = 0;
  let reused = 0;
  let conversation = 0;
  for (const r of results) {
    prefill += r.promptN;
    reused += r.cacheN;
    if (r.job.kind === 'turn') conversation += r.promptN;
  }
  return { prefill, reused, conversation };
}

/**
 * The least any setup must prefill: each conversation's first prompt once, then only what each turn adds beyond
 * the previous prompt and reply; small requests in full. Derived from usage, which is the same for every setup.
 */
export function idealPrefill(
  workload: Workload,
  results: readonly RequestResult[],
): { total: number; conversations: number } {
  const previous = new Map<string, RequestResult>();
  let total = 0;
  let conversations = 0;
  workload.jobs.forEach((job, i) => {
    const r = results[i]!;
    if (job.kind === 'small') {
      total += r.promptTokens;
      return;
    }
    const before = previous.get(job.conversation);
    const fresh = before
      ? Math.max(1, r.promptTokens - (before.promptTokens + before.completionTokens - 1))
      : r.promptTokens;
    total += fresh;
    conversations += fresh;
    previous.set(job.conversation, r);
  });
  return { total, conversations };
}

/**
 * KV bytes of every conversation's final state: what a perfect disk tier would hold at the end. An agent's big side
 * request (a memory extraction, an IDE completion with its context) counts as a conversation of one turn: when it is
 * answered nobody can tell it from a conversation's first turn, so its state is kept within the loss window too.
 */
export function liveCacheBytes(workload: Workload, results: readonly RequestResult[], kvBytesPerToken: number): number {
  const last = new Map<string, RequestResult>();
  workload.jobs.forEach((job, i) => {
    if (job.kind === 'turn') last.set(job.conversation, results[i]!);
    else if (isBigSide(job, results[i]!)) last.set(`side ${i}`, results[i]!);
  });
  let tokens = 0;
  for (const r of last.values()) tokens += stateTokens(r);
  return tokens * kvBytesPerToken;
}

/**
 * The states saving after every answer would write (the `always` policy's rule) for these answers: every turn's and
 * every big side request's, how many and their tokens in all.
 */
export function answerStates(workload: Workload, results: readonly RequestResult[]): { count: number; tokens: number } {
  const kept = results.filter((r, i) => workload.jobs[i]!.kind === 'turn' || isBigSide(workload.jobs[i]!, r));
  return { count: kept.length, tokens: kept.reduce((sum, r) => sum + stateTokens(r), 0) };
}

/**
 * What saving after every answer would have written for these answers (the real bench's
 * RealConfigMetrics.after_every_answer_bytes): their states at `kvBytesPerToken`, plus a file's header as the run's
 * own saves measured it (their bytes less their tokens' KV bytes, per save). Undefined where nothing was saved, or a
 * save did not say its tokens.
 */
export function afterEveryAnswerBytes(
  workload: Workload,
  results: readonly RequestResult[],
  actions: SlotActionCounts,
  kvBytesPerToken: number,
): number | undefined {
  if (actions.saves === 0 || actions.tokensWritten === undefined) return undefined;
  const header = (actions.bytesWritten - actions.tokensWritten * kvBytesPerToken) / actions.saves;
  if (!Number.isFinite(header)) return undefined;
  const states = answerStates(workload, results);
  return Math.round(states.tokens * kvBytesPerToken + states.count * header);
}

const isBigSide = (job: Job, r: RequestResult) =>
  job.kind === 'small' && job.side !== undefined && r.promptTokens >= BIG_SIDE_REQUEST_TOKENS;

/** Tokens of the state an answer leaves in its slot, as llama-server saves it: prompt and reply but the last token. */
const stateTokens = (r: RequestResult) => r.promptTokens + r.completionTokens - 1;

/** The proxy's default BIG_THRESHOLD_WORDS (500), in the simulator's tokens (about one a word): smaller is not kept. */
const BIG_SIDE_REQUEST_TOKENS = 500;

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A config's numbers from its results; times are divided by the time scale (model time) unless it is 0. */
export function summarize(
  workload: Workload,
  results: readonly RequestResult[],
  actions: SlotActionCounts,
  timeScale: number,
  wallMs: number,
  proc: { cpu: number; rss: number; disk: number },
): ConfigMetrics {
  const toModel = (ms: number) => (timeScale > 0 ? ms / timeScale : ms);
  const ttft = results.map((r) => toModel(r.ttftMs));
  const totals = tokenTotals(results);
  const replays = actions.replayPrefillTokens ?? 0;
  const metrics: ConfigMetrics = {
    prefill_tokens: totals.prefill + replays,
    reused_tokens: totals.reused,
    conversation_prefill_tokens: totals.conversation + replays,
    replay_prefill_tokens: replays,
    ttft_mean_ms: round(mean(ttft)),
    ttft_p50_ms: round(percentile(ttft, 50)),
    ttft_p95_ms: round(percentile(ttft, 95)),
    ttft_turn_mean_ms: round(mean(results.filter((r) => r.job.kind === 'turn').map((r) => toModel(r.ttftMs)))),
    wall_ms: round(toModel(wallMs)),
    saves: actions.saves,
    restores: actions.restores,
    bytes_written: actions.bytesWritten,
    bytes_read: actions.bytesRead,
    disk_bytes_final: proc.disk,
    skipped_growth_tokens: actions.skippedGrowthTokens ?? 0,
    proxy_cpu_s: round(proc.cpu),
    proxy_rss_mb: round(proc.rss),
  };
  const small = results.filter((r) => r.job.kind === 'small').map((r) => toModel(r.ttftMs));
  if (small.length > 0) metrics.ttft_small_mean_ms = round(mean(small));
  if (workload.name === 'overhead') {
    metrics.latency_p50_ms = round(
      percentile(
        results.map((r) => r.totalMs),
        50,
      ),
    );
    const tokens = results.reduce((a, r) => a + r.completionTokens, 0);
    const streamSeconds = results.reduce((a, r) => a + r.streamMs, 0) / 1000;
    metrics.stream_tokens_per_s = round(streamSeconds > 0 ? tokens / streamSeconds : 0);
  }
  return metrics;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
