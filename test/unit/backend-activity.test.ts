import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendActivity } from '../../src/backend/backend-activity.js';

test('a phase with the backend to itself is alone, and stays so after it ended', () => {
  const activity = new BackendActivity();
  const a = activity.begin(0);
  assert.equal(a.alone(), true);
  a.end();
  const b = activity.begin(0); // later: no overlap
  assert.equal(a.alone(), true);
  assert.equal(b.alone(), true);
});

test('phases that overlap are not alone, even when one began and ended inside the other', () => {
  const activity = new BackendActivity();
  const outer = activity.begin(0);
  const inner = activity.begin(0);
  inner.end();
  assert.equal(inner.alone(), false, 'outer was running when inner began');
  assert.equal(outer.alone(), false, 'inner began while outer ran');
  outer.end();
  outer.end(); // idempotent: the count stays right
  assert.equal(activity.begin(0).alone(), true);
});

test('backends are separate', () => {
  const activity = new BackendActivity();
  const a = activity.begin(0);
  const b = activity.begin(1);
  a.end();
  b.end();
  assert.equal(a.alone(), true);
  assert.equal(b.alone(), true);
});
