import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { medianRun } from '../../bench/real-run.js';
import type { RealConfigMetrics } from '../../bench/real-run.js';

/** A run with the fields the median reads; the rest does not matter here. */
const run = (ttft: number, prefill: number): RealConfigMetrics =>
  ({ ttft_mean_ms: ttft, prefill_tokens: prefill, saves: ttft }) as unknown as RealConfigMetrics;

describe('medianRun (the real bench with --repeat)', () => {
  it('a single run is reported as it is, without a repeats field', () => {
    const only = run(300, 1000);
    assert.equal(medianRun([only]), only);
  });

  it('reports the whole run with the median time to first token, and every run beside it in run order', () => {
    const median = medianRun([run(340, 1003), run(290, 1001), run(310, 1002)]);
    assert.equal(median.ttft_mean_ms, 310);
    assert.equal(median.prefill_tokens, 1002);
    assert.equal((median as unknown as { saves: number }).saves, 310, 'the other fields are that same run');
    assert.deepEqual(median.repeats, { ttft_mean_ms: [340, 290, 310], prefill_tokens: [1003, 1001, 1002] });
  });

  it('takes the lower middle run of an even count', () => {
    assert.equal(medianRun([run(400, 1), run(200, 2), run(300, 3), run(100, 4)]).ttft_mean_ms, 200);
  });
});
