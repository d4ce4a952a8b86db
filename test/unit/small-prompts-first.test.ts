import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SmallPromptsFirst } from '../../src/backend/small-prompts-first.js';

const LONG = { streamedMs: 5000, unstreamedMs: 5000 };

test('with no small prompt on its way, a big request does not wait', async () => {
  const first = new SmallPromptsFirst(LONG);
  assert.equal(await first.started(0), 0);
  first.onItsWay(0, true)();
  assert.equal(await first.started(0), 0, 'a small prompt that started holds nothing back');
});

test('a big request waits until the small prompts on their way start', async () => {
  const first = new SmallPromptsFirst(LONG);
  const a = first.onItsWay(0, true);
  const b = first.onItsWay(0, true);
  let done = false;
  const waiting = first.started(0).then((ms) => ((done = true), ms));
  await sleep(20);
  a();
  await sleep(20);
  assert.equal(done, false, 'one small prompt has not started yet');
  b();
  b(); // idempotent
  const waited = await waiting;
  assert.ok(waited >= 35 && waited < 1000, `waited ${waited} ms`);
});

test('a small prompt that comes after the wait began does not prolong it', async () => {
  const first = new SmallPromptsFirst(LONG);
  const before = first.onItsWay(0, true);
  const waiting = first.started(0);
  first.onItsWay(0, true); // never starts
  before();
  assert.ok((await waiting) < 1000);
});

test('the wait ends with the head start, counted from when each small prompt got its slot', async () => {
  const first = new SmallPromptsFirst({ streamedMs: 5000, unstreamedMs: 400 });
  first.onItsWay(0, false); // a non-streamed answer: no first byte before its end
  await sleep(300);
  const t0 = performance.now();
  const waited = await first.started(0);
  const took = performance.now() - t0;
  // About the 100 ms left of its head start; a head start counted from now would be 400.
  assert.ok(took >= 80 && took < 300, `took ${took} ms`);
  assert.ok(Math.abs(waited - took) < 5);
  await sleep(5); // a timer may fire a little before performance.now() reaches its time
  assert.equal(await first.started(0), 0, 'a small prompt past its head start holds nothing back');
});

test('backends are separate', async () => {
  const first = new SmallPromptsFirst(LONG);
  first.onItsWay(1, true);
  assert.equal(await first.started(0), 0);
});
