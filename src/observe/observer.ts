/**
 * What the proxy remembers of its traffic for the status API, the dashboard and the metrics: the last requests
 * (a bounded ring), totals since start, and a per-minute history. Fed once per request with its `chat` log line;
 * O(1) per request, nothing on the request path waits for it.
 */
import type { ChatDecision, ChatLogLine } from '../http/request-log.js';
import { MinuteHistory, round3 } from './minute-history.js';
import type { HistoryPoint } from './minute-history.js';
import { recordOf } from './request-record.js';
import type { RequestRecord } from './request-record.js';

/** Requests kept for `GET /proxycache/requests`. */
export const RECENT_REQUESTS = 200;

/** Below this many prompt tokens a request's own prefill speed is mostly overhead (as in restore-economics). */
const MIN_PREFILL_SAMPLE = 64;
/** Models whose last prefill speed is kept (least recently measured dropped first). */
const MODELS_KEPT = 64;

export interface ObserverDeps {
  /** The measured prefill speed of a model (RestoreEconomics, smart policy), if known. */
  prefillMsPerToken?: (model: string) => number | undefined;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

export interface Totals {
  requests: number;
  /** Big requests placed on a slot that held their prefix or got it restored, of all big requests placed. */
  hit_rate: number | null;
  tokens_reused: number;
  tokens_prefilled: number;
  prefill_seconds_saved: number;
  decisions: Record<ChatDecision, number>;
}

/** Called for every request after it was recorded (the metrics). */
export type RecordListener = (record: RequestRecord, prefillSecondsSaved: number) => void;

export class Observer {
  private readonly ring: Array<RequestRecord | undefined> = new Array(RECENT_REQUESTS);
  private next = 0;
  private readonly history = new MinuteHistory();
  private readonly lastPrefill = new Map<string, number>();
  private readonly listeners: RecordListener[] = [];
  private readonly totals = {
    requests: 0,
    reused: 0,
    prefilled: 0,
    savedSeconds: 0,
    decisions: { resident: 0, restore: 0, server_cache: 0, cold: 0, small: 0, no_slot: 0, client_gone: 0 } as Record<
      ChatDecision,
      number
    >,
  };
  private readonly now: () => number;

  constructor(private readonly deps: ObserverDeps = {}) {
    this.now = deps.now ?? Date.now;
  }

  /** Record one request from its `chat` log line. Never throws. */
  noteRequest(line: ChatLogLine): void {
    const at = this.now();
    const record = recordOf(line, at);
    const saved = this.prefillSecondsSaved(record, line.prompt_ms);
    this.ring[this.next] = record;
    this.next = (this.next + 1) % RECENT_REQUESTS;
    const t = this.totals;
    t.requests++;
    t.decisions[record.decision]++;
    t.reused += record.cache_n ?? 0;
    t.prefilled += record.prompt_n ?? 0;
    t.savedSeconds += saved;
    if (record.cache_n !== null || record.prompt_n !== null)
      this.history.add(at, record.cache_n ?? 0, record.prompt_n ?? 0, saved);
    for (const listener of this.listeners) {
      try {
        listener(record, saved);
      } catch {
        // Observation must never fail a request.
      }
    }
  }

  onRecord(listener: RecordListener): void {
    this.listeners.push(listener);
  }

  /** The last `limit` requests, newest first. */
  recent(limit = RECENT_REQUESTS): RequestRecord[] {
    const out: RequestRecord[] = [];
    for (let i = 1; i <= RECENT_REQUESTS && out.length < limit; i++) {
      const record = this.ring[(this.next - i + RECENT_REQUESTS) % RECENT_REQUESTS];
      if (!record) break;
      out.push(record);
    }
    return out;
  }

  /** The last `minutes` minutes, one point each, oldest first. */
  historyPoints(minutes: number): HistoryPoint[] {
    return this.history.points(this.now(), minutes);
  }

  totalsSinceStart(): Totals {
    const t = this.totals;
    const found = t.decisions.resident + t.decisions.restore + t.decisions.server_cache;
    const placed = found + t.decisions.cold;
    return {
      requests: t.requests,
      hit_rate: placed === 0 ? null : round3(found / placed),
      tokens_reused: t.reused,
      tokens_prefilled: t.prefilled,
      prefill_seconds_saved: round3(t.savedSeconds),
      decisions: { ...t.decisions },
    };
  }

  /**
   * An estimate: the reused tokens at the model's prefill speed. The speed is the measured one (smart policy), else
   * the last prefill of that model that was long enough to measure; without either, nothing is counted.
   */
  private prefillSecondsSaved(record: RequestRecord, promptMs: number | undefined): number {
    const { model, cache_n: reused, prompt_n: prefilled } = record;
    if (prefilled !== null && prefilled >= MIN_PREFILL_SAMPLE && promptMs !== undefined && promptMs > 0) {
      // Model names come from clients: keep a bounded number of them.
      this.lastPrefill.delete(model);
      if (this.lastPrefill.size >= MODELS_KEPT) this.lastPrefill.delete(this.lastPrefill.keys().next().value!);
      this.lastPrefill.set(model, promptMs / prefilled);
    }
    if (!reused) return 0;
    const msPerToken = this.deps.prefillMsPerToken?.(model) ?? this.lastPrefill.get(model);
    return msPerToken === undefined ? 0 : (reused * msPerToken) / 1000;
  }
}
