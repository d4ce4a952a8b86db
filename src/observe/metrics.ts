/**
 * The proxy's Prometheus metrics (`GET /metrics`), in its own prom-client registry. Counters and histograms move
 * with events the proxy already has in hand (a request's chat line, a save or restore result, a cleanup run): a few
 * in-memory increments each. Gauges of state (slots, index, backends) are computed only when scraped, in collect
 * callbacks, so the request path pays nothing for them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackendKind } from '../backend/backend-kind.js';
import type { CacheMeta } from '../cache/meta-file.js';
import type { CleanupStats } from '../cleanup/cache-cleanup.js';
import type { CacheOpResult } from '../slots/slot-cache.js';
import type { SlotState } from '../slots/slot-state.js';
import type { BackendReport } from './backend-probe.js';
import type { RequestRecord } from './request-record.js';

export interface MetricsSources {
  version: string;
  clients: ReadonlyArray<{ readonly url: string; readonly kind: BackendKind | undefined }>;
  slots: () => readonly SlotState[];
  entries: () => Iterable<CacheMeta>;
  entryCount: () => number;
  /** Content that would be lost if the slot were overwritten now (the policy's save rule). */
  unsaved: (slot: SlotState) => boolean;
  /** Requests waiting for a slot now (every candidate busy, or a busy one worth waiting for). */
  waitingForSlot: () => number;
  /** Answers left unsaved to the servers' RAM caches, waiting for their rescue to disk. */
  inRamCacheOnly: () => number;
  backendReports: () => Promise<readonly BackendReport[]>;
}

/** The cache outcome of a request, as the metrics name it. */
export type CacheOutcome = 'resident' | 'restored' | 'server_cache' | 'cold' | 'small' | 'skipped';

export function cacheOutcome(record: Pick<RequestRecord, 'decision'>): CacheOutcome {
  switch (record.decision) {
    case 'resident':
    case 'server_cache':
    case 'cold':
    case 'small':
      return record.decision;
    case 'restore':
      return 'restored';
    default:
      // No slot in time, or the client left while waiting: the cache played no part.
      return 'skipped';
  }
}

/** Why a save or restore failed, as a bounded label (never the message itself). */
export function failureReason(result: CacheOpResult): string {
  if (result.unverified) return 'unverified';
  if (result.noRoom) return 'no_room';
  const error = result.error ?? '';
  if (error === 'model not loaded') return 'model_not_loaded';
  if (error.startsWith('slot was empty')) return 'slot_cleared';
  const http = /^HTTP (\d{3})/.exec(error);
  if (http) return `http_${http[1]}`;
  if (/timeout|did not answer in time/i.test(error)) return 'timeout';
  return 'unreachable';
}

export interface ProxyMetrics {
  readonly registry: Registry;
  /** One finished request (its chat line) and the prefill seconds its reuse saved. */
  noteRequest(record: RequestRecord, prefillSecondsSaved: number): void;
  /** One HTTP request answered (any route). `route` is the route pattern, never the raw URL. */
  noteHttp(route: string, api: string, status: number): void;
  noteCacheOp(action: 'save' | 'restore', result: CacheOpResult): void;
  noteCleanup(stats: CleanupStats): void;
}

export function createMetrics(src: MetricsSources): ProxyMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const reg = { registers: [registry] };

  new Gauge({
    ...reg,
    name: 'proxycache_build_info',
    help: 'Always 1; the proxy version as a label',
    labelNames: ['version'],
  }).set({ version: src.version }, 1);
  const http = new Counter({
    ...reg,
    name: 'proxycache_http_requests_total',
    help: 'HTTP requests answered, by route pattern, API and status',
    labelNames: ['route', 'api', 'status'],
  });
  const chats = new Counter({
    ...reg,
    name: 'proxycache_chat_requests_total',
    help:
      "Chat requests by cache outcome: resident, restored, server_cache (from the server's RAM cache), " +
      'cold, small (not worth caching), skipped (no slot got)',
    labelNames: ['outcome'],
  });
  const reused = new Counter({
    ...reg,
    name: 'proxycache_prompt_tokens_reused_total',
    help: 'Prompt tokens the backend took from its KV cache (timings.cache_n)',
  });
  const prefilled = new Counter({
    ...reg,
    name: 'proxycache_prompt_tokens_prefilled_total',
    help: 'Prompt tokens the backend computed (timings.prompt_n)',
  });
  const saved = new Counter({
    ...reg,
    name: 'proxycache_prefill_saved_seconds_total',
    help: "Estimated prefill time avoided: reused tokens at the model's measured prefill speed",
  });
  const wait = new Histogram({
    ...reg,
    name: 'proxycache_slot_wait_seconds',
    help: 'Time a chat request waited for a slot',
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  });
  const smallFirst = new Histogram({
    ...reg,
    name: 'proxycache_small_first_wait_seconds',
    help: 'Time a big request waited for the small prompts on their way to its backend to start first (those that waited)',
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5],
  });
  const ops = new Counter({
    ...reg,
    name: 'proxycache_cache_operations_total',
    help: 'Slot saves and restores, by action and result (ok, failed)',
    labelNames: ['action', 'result'],
  });
  const opFailures = new Counter({
    ...reg,
    name: 'proxycache_cache_operation_failures_total',
    help: 'Failed slot saves and restores, by action and reason',
    labelNames: ['action', 'reason'],
  });
  const opSeconds = new Histogram({
    ...reg,
    name: 'proxycache_cache_operation_duration_seconds',
    help: 'Wall time of slot saves and restores (as the waiting request saw it)',
    labelNames: ['action'],
    buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });
  const opBytes = new Counter({
    ...reg,
    name: 'proxycache_cache_operation_bytes_total',
    help: 'Bytes written by saves and read by restores, as the backend reported',
    labelNames: ['action'],
  });
  const opTokens = new Counter({
    ...reg,
    name: 'proxycache_cache_operation_tokens_total',
    help: 'Tokens saved and restored, as the backend reported',
    labelNames: ['action'],
  });
  const cleanupRuns = new Counter({
    ...reg,
    name: 'proxycache_cleanup_runs_total',
    help: 'Cleanup runs that looked at CACHE_DIR',
  });
  const cleanupDeleted = new Counter({
    ...reg,
    name: 'proxycache_cleanup_deleted_files_total',
    help: 'Cache files deleted by cleanup, by reason (age, size, unindexed)',
    labelNames: ['reason'],
  });
  const cleanupDropped = new Counter({
    ...reg,
    name: 'proxycache_cleanup_dropped_entries_total',
    help: 'Index entries dropped by cleanup because their file was gone',
  });
  const cleanupFreed = new Counter({
    ...reg,
    name: 'proxycache_cleanup_freed_bytes_total',
    help: 'Bytes freed by cleanup',
  });
  let lastCleanup: CleanupStats | undefined;

  registerStateGauges(src, reg, () => lastCleanup);

  return {
    registry,
    noteRequest(record, prefillSecondsSaved) {
      chats.inc({ outcome: cacheOutcome(record) });
      if (record.cache_n) reused.inc(record.cache_n);
      if (record.prompt_n) prefilled.inc(record.prompt_n);
      if (prefillSecondsSaved > 0) saved.inc(prefillSecondsSaved);
      if (record.wait_ms !== null) wait.observe(record.wait_ms / 1000);
      if (record.small_first_ms) smallFirst.observe(record.small_first_ms / 1000);
    },
    noteHttp(route, api, status) {
      http.inc({ route, api, status: String(status) });
    },
    noteCacheOp(action, result) {
      ops.inc({ action, result: result.ok ? 'ok' : 'failed' });
      opSeconds.observe({ action }, result.ms / 1000);
      if (!result.ok) opFailures.inc({ action, reason: failureReason(result) });
      if (result.ok && result.bytes) opBytes.inc({ action }, result.bytes);
      if (result.ok && result.tokens) opTokens.inc({ action }, result.tokens);
    },
    noteCleanup(stats) {
      lastCleanup = stats;
      cleanupRuns.inc();
      if (stats.deletedByAge) cleanupDeleted.inc({ reason: 'age' }, stats.deletedByAge);
      if (stats.deletedBySize) cleanupDeleted.inc({ reason: 'size' }, stats.deletedBySize);
      if (stats.deletedUnindexed) cleanupDeleted.inc({ reason: 'unindexed' }, stats.deletedUnindexed);
      if (stats.droppedMissing) cleanupDropped.inc(stats.droppedMissing);
      if (stats.freedBytes) cleanupFreed.inc(stats.freedBytes);
    },
  };
}

/** Gauges of state, computed at scrape time. */
function registerStateGauges(
  src: MetricsSources,
  reg: { registers: Registry[] },
  lastCleanup: () => CleanupStats | undefined,
): void {
  const slotLabels = ['backend', 'model'];
  const slotGauge = (name: string, help: string, counts: (slot: SlotState) => boolean) =>
    new Gauge({
      ...reg,
      name,
      help,
      labelNames: slotLabels,
      collect() {
        this.reset();
        for (const slot of src.slots()) {
          if (slot.disabled) continue;
          const labels = { backend: src.clients[slot.backend]?.url ?? String(slot.backend), model: slot.model };
          this.inc(labels, counts(slot) ? 1 : 0);
        }
      },
    });
  slotGauge(
    'proxycache_slots',
    'Slots in use by the proxy, per backend and model (model "" = every model of a plain llama-server)',
    () => true,
  );
  slotGauge('proxycache_slots_busy', 'Slots serving a request or a save now', (s) => s.busy);
  slotGauge(
    'proxycache_slots_big_content',
    'Slots holding a big (cache-worthy) prompt',
    (s) => s.content?.big === true,
  );
  slotGauge(
    'proxycache_slots_unsaved',
    'Slots whose big content is not on disk and would be saved before being overwritten',
    (s) => src.unsaved(s),
  );

  new Gauge({
    ...reg,
    name: 'proxycache_requests_waiting_for_slot',
    help: 'Generation requests waiting for a slot now',
    collect() {
      this.set(src.waitingForSlot());
    },
  });

  new Gauge({
    ...reg,
    name: 'proxycache_ram_cache_only',
    help: "Conversations whose latest state only a server's RAM cache holds, waiting to be saved to disk from there (a restart now would lose them)",
    collect() {
      this.set(src.inRamCacheOnly());
    },
  });

  new Gauge({
    ...reg,
    name: 'proxycache_cache_entries',
    help: 'Entries in the prefix index (cache files the proxy may restore)',
    collect() {
      this.set(src.entryCount());
    },
  });
  new Gauge({
    ...reg,
    name: 'proxycache_cache_entry_bytes',
    help: "Sum of the index entries' file sizes, as the backend reported at save time",
    collect() {
      let bytes = 0;
      for (const meta of src.entries()) bytes += meta.file_bytes ?? 0;
      this.set(bytes);
    },
  });
  new Gauge({
    ...reg,
    name: 'proxycache_cache_dir_bytes',
    help: 'Bytes of the cache files in CACHE_DIR, as of the last cleanup run',
    collect() {
      const stats = lastCleanup();
      if (stats) this.set(stats.remainingBytes);
    },
  });
  new Gauge({
    ...reg,
    name: 'proxycache_cache_dir_files',
    help: 'Cache files in CACHE_DIR, as of the last cleanup run',
    collect() {
      const stats = lastCleanup();
      if (stats) this.set(stats.remainingFiles);
    },
  });
  new Gauge({
    ...reg,
    name: 'proxycache_backend_up',
    help: 'Whether the backend answered its last probe (GET /health, at most every 2 s)',
    labelNames: ['backend'],
    async collect() {
      const reports = await src.backendReports();
      this.reset();
      src.clients.forEach((client, i) => this.set({ backend: client.url }, reports[i]?.reachable ? 1 : 0));
    },
  });
  new Gauge({
    ...reg,
    name: 'proxycache_backend_info',
    help: "Always 1; the backend's kind (llama-server, llama-swap, router, unknown) as a label",
    labelNames: ['backend', 'kind'],
    collect() {
      this.reset();
      for (const client of src.clients) this.set({ backend: client.url, kind: client.kind ?? 'unknown' }, 1);
    },
  });
}
