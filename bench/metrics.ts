/** Turns per-request results into the numbers the benchmark reports. */
import type { RequestResult } from './driver.js';
import type { Workload } from './workloads.js';

export interface ConfigMetrics {
  prefill_tokens: number;
  reused_tokens: number;
  conversation_prefill_tokens: number;
  ttft_mean_ms: number;
  ttft_p50_ms: number;
  ttft_p95_ms: number;
  wall_ms: number;
  saves: number;
  restores: number;
  bytes_written: number;
  bytes_read: number;
  disk_bytes_final: number;
  proxy_cpu_s: number;
  proxy_rss_mb: number;
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
export function idealPrefill(workload: Workload, results: readonly RequestResult[]): { total: number; conversations: number } {
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
    const fresh = before ? Math.max(1, r.promptTokens - (before.promptTokens + before.completionTokens - 1)) : r.promptTokens;
    total += fresh;
    conversations += fresh;
    previous.set(job.conversation, r);
  });
  return { total, conversations };
}

/** KV bytes of every conversation's final state: what a perfect disk tier would hold at the end. */
export function liveCacheBytes(workload: Workload, results: readonly RequestResult[], kvBytesPerToken: number): number {
  const last = new Map<string, RequestResult>();
  workload.jobs.forEach((job, i) => {
    if (job.kind === 'turn') last.set(job.conversation, results[i]!);
  });
  let tokens = 0;
  for (const r of last.values()) tokens += r.promptTokens + r.completionTokens - 1;
  return tokens * kvBytesPerToken;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}
