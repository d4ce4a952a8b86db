/** The observation module's pure parts: the request ring, totals, the minute history, and the metric labels. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChatLogLine } from '../../src/http/request-log.js';
import { cacheOutcome, failureReason } from '../../src/observe/metrics.js';
import { HISTORY_MINUTES, MinuteHistory } from '../../src/observe/minute-history.js';
import { Observer, RECENT_REQUESTS } from '../../src/observe/observer.js';

const line = (n: number, extra: Partial<ChatLogLine> = {}): ChatLogLine => ({
  model: 'm',
  key: n.toString(16).padStart(16, '0'),
  decision: 'cold',
  status: 200,
  big: true,
  cache_n: 10,
  prompt_n: 100,
  prompt_ms: 50,
  wait_ms: 1,
  total_ms: 9,
  ...extra,
});

it('the observer keeps the last 200 requests, newest first, and counts every one in the totals', () => {
  let now = Date.UTC(2025, 0, 1, 12, 0, 0);
  const observer = new Observer({ now: () => now });
  for (let i = 0; i < RECENT_REQUESTS + 50; i++) {
    now += 100;
    observer.noteRequest(line(i, i % 2 === 0 ? { decision: 'restore' } : {}));
  }
  const recent = observer.recent();
  assert.equal(recent.length, RECENT_REQUESTS);
  assert.equal(recent[0]!.key, (RECENT_REQUESTS + 49).toString(16).padStart(16, '0'));
  assert.equal(recent.at(-1)!.key, (50).toString(16).padStart(16, '0'));
  assert.deepEqual(
    observer.recent(3).map((r) => r.key),
    recent.slice(0, 3).map((r) => r.key),
  );
  const totals = observer.totalsSinceStart();
  assert.equal(totals.requests, RECENT_REQUESTS + 50);
  assert.equal(totals.hit_rate, 0.5);
  assert.equal(totals.tokens_reused, 10 * (RECENT_REQUESTS + 50));
  // 0.5 ms per token measured from the requests themselves, 10 tokens reused each.
  assert.equal(totals.prefill_seconds_saved, 0.005 * (RECENT_REQUESTS + 50));
});

it("the measured prefill speed wins over the request's own; without either nothing is counted as saved", () => {
  const measured = new Observer({ prefillMsPerToken: () => 2 });
  measured.noteRequest(line(1, { cache_n: 1000 }));
  assert.equal(measured.totalsSinceStart().prefill_seconds_saved, 2);
  const unknown = new Observer();
  unknown.noteRequest(line(1, { prompt_n: 10, prompt_ms: 5, cache_n: 1000 }));
  assert.equal(unknown.totalsSinceStart().prefill_seconds_saved, 0, 'a 10-token prefill is too short to measure');
});

it('hit rate is null before any big request was placed; small and unplaced requests do not count in it', () => {
  const observer = new Observer();
  observer.noteRequest(line(1, { decision: 'small' }));
  observer.noteRequest(line(2, { decision: 'no_slot', status: 503 }));
  assert.equal(observer.totalsSinceStart().hit_rate, null);
  assert.equal(observer.totalsSinceStart().decisions.no_slot, 1);
});

it('the minute history gives one point per minute, zeros where nothing happened, and forgets after a day', () => {
  const history = new MinuteHistory();
  const t0 = Date.UTC(2025, 0, 1, 0, 0, 30);
  history.add(t0, 5, 50, 0.1);
  history.add(t0 + 10_000, 5, 50, 0.1);
  history.add(t0 + 120_000, 1, 2, 0);
  const points = history.points(t0 + 120_000, 3);
  assert.deepEqual(
    points.map((p) => [p.t, p.tokens_reused, p.tokens_prefilled, p.prefill_seconds_saved]),
    [
      ['2025-01-01T00:00:00.000Z', 10, 100, 0.2],
      ['2025-01-01T00:01:00.000Z', 0, 0, 0],
      ['2025-01-01T00:02:00.000Z', 1, 2, 0],
    ],
  );
  // The same ring slot a day later is a new minute: the old bucket is not added to.
  history.add(t0 + HISTORY_MINUTES * 60_000, 7, 7, 0);
  const later = history.points(t0 + HISTORY_MINUTES * 60_000, HISTORY_MINUTES);
  assert.equal(later.length, HISTORY_MINUTES);
  assert.equal(later.at(-1)!.tokens_reused, 7);
  assert.equal(
    later.reduce((n, p) => n + p.tokens_reused, 0),
    8,
    'the 10 tokens of a day ago are gone, the 1 of 2 min later stays',
  );
});

it('metric labels stay bounded: outcomes and failure reasons', () => {
  assert.deepEqual(
    ['resident', 'restore', 'cold', 'small', 'no_slot', 'client_gone'].map((decision) =>
      cacheOutcome({ decision } as never),
    ),
    ['resident', 'restored', 'cold', 'small', 'skipped', 'skipped'],
  );
  assert.equal(failureReason({ ok: false, ms: 1, error: 'HTTP 400 Unable to restore slot' }), 'http_400');
  assert.equal(
    failureReason({ ok: false, ms: 1, error: 'HTTP 400 Unable to restore slot', noRoom: true }),
    'no_room',
    'the same answer, taken for a lack of room in the KV buffer (entry kept)',
  );
  assert.equal(failureReason({ ok: false, ms: 1, error: 'model not loaded' }), 'model_not_loaded');
  assert.equal(
    failureReason({ ok: false, ms: 1, error: 'slot was empty: the server cleared it while idle' }),
    'slot_cleared',
  );
  assert.equal(
    failureReason({ ok: false, ms: 1, error: 'saved 3 tokens, expected 90', unverified: true }),
    'unverified',
  );
  assert.equal(failureReason({ ok: false, ms: 1, error: 'backend http://x did not answer in time' }), 'timeout');
  assert.equal(
    failureReason({ ok: false, ms: 1, error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1' }),
    'unreachable',
  );
});
