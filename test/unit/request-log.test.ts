import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestLog } from '../../src/http/request-log.js';
import type { PromptAnalysis } from '../../src/prompt/prompt-analysis.js';
import type { SlotPlan } from '../../src/slots/slot-state.js';

const analysis: PromptAnalysis = {
  model: 'm',
  prefixLen: 10,
  wordCount: 2,
  blocks: ['b'],
  key: 'k'.repeat(64),
  big: true,
};
const plan = (): SlotPlan => ({ slot: { backend: 0, model: '', id: 0, busy: true, disabled: false, lastUsed: 1 } });

test('wait_ms is the time until the slot was acquired, never derived from the save and restore durations (regression: a negative wait_ms)', () => {
  // The request arrived 5 ms ago and got its slot just now (the log is created then). Its eviction save reports
  // more time than has passed since: a duration from another clock (wall time stepped, or whole-millisecond rounding).
  const started = performance.now() - 5;
  const line = new RequestLog(analysis, plan(), started);
  line.evictSave = { ok: true, ms: 1000 };
  line.restore = { ok: true, ms: 3 };
  line.forwardStarted = performance.now();
  const wait = line.toJSON('http://b').wait_ms as number;
  assert.ok(wait >= 5 && wait < 1000, `wait_ms ${wait}`);
});

test('small_first_ms says how long a big request let small prompts start first, and gate_ms does not count it again', () => {
  const acquired = performance.now() - 50;
  const line = new RequestLog(analysis, plan(), acquired - 1, acquired);
  line.smallFirstMs = 30;
  line.gatePassed = acquired + 40; // 30 ms for the small prompts, then 10 ms at the gate
  const json = line.toJSON('http://b');
  assert.equal(json.small_first_ms, 30);
  assert.equal(json.gate_ms, 10);

  const none = new RequestLog(analysis, plan(), acquired - 1, acquired);
  none.smallFirstMs = 0;
  assert.equal('small_first_ms' in none.toJSON('http://b'), false, 'absent when nothing was on its way');
});
