/**
 * SAVE_POLICY=smart with IDLE_SAVE_SECONDS: once the slots are contended (a request had to evict another
 * conversation), a slot whose unsaved conversation stays idle is saved in the background, so the request that
 * evicts it later does not wait for the write. Without contention nothing is saved.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { chat, continued, exists, keyOf, logLineAfter, opening, slotFileEvents } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

const IDLE = { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0.2' };

describe('smart policy: saves in idle moments', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  it('after an eviction, idle slots with unsaved conversations are saved; the next eviction then writes nothing', async () => {
    stack = await startStack({ env: IDLE });
    const a = opening(2101);
    const b = opening(2102);
    const c = opening(2103);
    const d = opening(2104);
    await chat(stack, a);
    const second = await chat(stack, b);
    const mark = stack.logs.lines.length;
    const third = await chat(stack, c); // both slots full: a is saved and evicted, the slots are contended now
    assert.equal(third.line.evict_save?.ok, true);

    // b (released before the contention began) and c (just released) are saved once idle.
    const idleB = await logLineAfter(stack.logs, mark, 'saved idle slot', (l) => l.key === keyOf(b).slice(0, 16));
    const idleC = await logLineAfter(stack.logs, mark, 'saved idle slot', (l) => l.key === keyOf(c).slice(0, 16));
    assert.equal(idleB.save.ok, true, JSON.stringify(idleB));
    assert.equal(idleC.save.ok, true, JSON.stringify(idleC));
    assert.ok(await exists(join(stack.cacheDir, keyOf(b))));
    assert.ok(await exists(join(stack.cacheDir, keyOf(c))));

    // d takes the least recently used slot (b's: the background save did not count as a use) without a save.
    const savesBefore = slotFileEvents(stack.sim, 'save').length;
    const fourth = await chat(stack, d);
    assert.equal(fourth.line.slot, second.line.slot);
    assert.equal(fourth.line.evict_save, undefined, 'b was on disk already');
    assert.equal(slotFileEvents(stack.sim, 'save').length, savesBefore);

    // b comes back and is restored from the background save.
    const back = await chat(stack, continued(b, second.content, 2105));
    assert.equal(back.line.decision, 'restore');
    assert.equal(back.line.restore_key, keyOf(b).slice(0, 16));
    assert.ok(back.timings.cache_n >= second.timings.cache_n + second.timings.prompt_n, JSON.stringify(back.timings));
  });

  it('a conversation that keeps its slot after an idle save stays resident, and its growth extends the saved entry', async () => {
    // Every growth counts here (the default skips re-saves of under 256 new tokens, more than this test adds).
    stack = await startStack({ env: { ...IDLE, SAVE_MIN_NEW_TOKENS: '0' } });
    const a = opening(2201);
    const b = opening(2202);
    const c = opening(2203);
    await chat(stack, a);
    await chat(stack, b);
    const mark = stack.logs.lines.length;
    const third = await chat(stack, c);
    await logLineAfter(stack.logs, mark, 'saved idle slot', (l) => l.key === keyOf(c).slice(0, 16));

    const next = await chat(stack, continued(c, third.content, 2204));
    assert.equal(next.line.decision, 'resident');
    assert.equal(next.line.slot, third.line.slot);
    assert.equal(next.line.restore, undefined);
    // Its next idle save replaces the entry it extends (lineage): one file for the conversation.
    const later = stack.logs.lines.length;
    await logLineAfter(stack.logs, later, 'saved idle slot', (l) => l.key === keyOf(continued(c, third.content, 2204)).slice(0, 16));
    assert.equal(await exists(join(stack.cacheDir, keyOf(c))), false, 'the older file is gone');
  });

  it('without contention nothing is saved, however long the slots stay idle', async () => {
    stack = await startStack({ env: IDLE });
    await chat(stack, opening(2301));
    await chat(stack, opening(2302));
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(slotFileEvents(stack.sim, 'save'), []);
    assert.equal(stack.logs.withMsg('saved idle slot').length, 0);
  });
});
