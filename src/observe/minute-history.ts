/**
 * Tokens reused and prefilled per minute, for the dashboard's chart: a fixed ring of one bucket per minute over the
 * last day. Adding to it is O(1); a read fills the minutes without traffic with zeros.
 */

/** One minute of traffic. */
export interface HistoryPoint {
  /** Start of the minute (ISO). */
  t: string;
  tokens_reused: number;
  tokens_prefilled: number;
  prefill_seconds_saved: number;
}

export const BUCKET_SECONDS = 60;
/** Minutes kept: one day. */
export const HISTORY_MINUTES = 24 * 60;

interface Bucket {
  minute: number;
  reused: number;
  prefilled: number;
  savedSeconds: number;
}

export class MinuteHistory {
  private readonly buckets: Array<Bucket | undefined> = new Array(HISTORY_MINUTES);

  /** Add a request's tokens to the minute of `at` (milliseconds since the epoch). */
  add(at: number, reused: number, prefilled: number, savedSeconds: number): void {
    const minute = Math.floor(at / (BUCKET_SECONDS * 1000));
    const slot = minute % HISTORY_MINUTES;
    let bucket = this.buckets[slot];
    if (bucket?.minute !== minute) this.buckets[slot] = bucket = { minute, reused: 0, prefilled: 0, savedSeconds: 0 };
    bucket.reused += reused;
    bucket.prefilled += prefilled;
    bucket.savedSeconds += savedSeconds;
  }

  /** The last `minutes` minutes up to and including the one of `now`, oldest first, one point per minute. */
  points(now: number, minutes: number): HistoryPoint[] {
    const last = Math.floor(now / (BUCKET_SECONDS * 1000));
    const count = Math.max(1, Math.min(HISTORY_MINUTES, Math.floor(minutes)));
    const points: HistoryPoint[] = [];
    for (let minute = last - count + 1; minute <= last; minute++) {
      const bucket = this.buckets[minute % HISTORY_MINUTES];
      const hit = bucket?.minute === minute ? bucket : undefined;
      points.push({
        t: new Date(minute * BUCKET_SECONDS * 1000).toISOString(),
        tokens_reused: hit?.reused ?? 0,
        tokens_prefilled: hit?.prefilled ?? 0,
        prefill_seconds_saved: round3(hit?.savedSeconds ?? 0),
      });
    }
    return points;
  }
}

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
