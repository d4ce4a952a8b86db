/**
 * SAVE_POLICY=smart write-behind (IDLE_SAVE_SECONDS is the loss window): each answer's new state is saved in the
 * backend's idle time right after it, contended or not, unless the conversation continues first; an eviction then
 * finds it on disk and writes nothing; a request for a conversation whose slot is busy saving waits for that slot
 * instead of starting cold elsewhere.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { chat, continued, exists, keyOf, logLineAfter, opening, slotFileEvents } from '../support/cache.js';
import { eventually } from '../support/deadline.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

const WRITE_BEHIND = { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0.4', SAVE_MIN_NEW_TOKENS: '0' };
const short = (messages: Parameters<typeof keyOf>[0]) => keyOf(messages).slice(0, 16);

describe('smart policy: write-behind saves', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  it('saves an answer without any contention, within the window, while the backend is idle', async () => {
    stack = await startStack({ env: WRITE_BEHIND });
    const a = opening(2101);
    const mark = stack.logs.lines.length;
    const started = Date.now();
    await chat(stack, a);
    const saved = await logLineAfter(stack.logs, mark, 'saved after answer', (l) => l.key === short(a), 2000);
    assert.equal(saved.save.ok, true, JSON.stringify(saved));
    assert.equal(saved.why, 'idle');
    assert.ok(Date.now() - started < 2000);
    assert.ok(await exists(join(stack.cacheDir, keyOf(a))));
  });

  it('an eviction after the write-behind save writes nothing, and the conversation comes back restored', async () => {
    stack = await startStack({ env: WRITE_BEHIND });
    const a = opening(2201);
    const mark = stack.logs.lines.length;
    const first = await chat(stack, a);
    await logLineAfter(stack.logs, mark, 'saved after answer', (l) => l.key === short(a));
    await chat(stack, opening(2202));
    const savesBefore = slotFileEvents(stack.sim, 'save').length;
    const third = await chat(stack, opening(2203)); // evicts a (least recently used), already on disk
    assert.equal(third.line.slot, first.line.slot);
    assert.equal(third.line.evict_save, undefined, 'a was on disk already');
    assert.equal(slotFileEvents(stack.sim, 'save').length, savesBefore);

    const back = await chat(stack, continued(a, first.content, 2204));
    assert.equal(back.line.decision, 'restore');
    assert.equal(back.line.restore_key, short(a));
    assert.ok(back.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n, JSON.stringify(back.timings));
  });

  it('a conversation that continues at once is not saved in between; its latest state is, and replaces the older file', async () => {
    stack = await startStack({ env: { ...WRITE_BEHIND, IDLE_SAVE_SECONDS: '2' } });
    const a = opening(2301);
    const mark = stack.logs.lines.length;
    const first = await chat(stack, a);
    const a2 = continued(a, first.content, 2302);
    const second = await chat(stack, a2); // within the settle time: a's own save is skipped
    assert.equal(second.line.decision, 'resident');
    const saved = await logLineAfter(stack.logs, mark, 'saved after answer', () => true, 4000);
    assert.equal(saved.key, short(a2), 'only the latest state is written');
    assert.equal(await exists(join(stack.cacheDir, keyOf(a))), false);

    // The next turn's save supersedes it (lineage): one file per conversation.
    const a3 = continued(a2, second.content, 2303);
    const later = stack.logs.lines.length;
    await chat(stack, a3);
    await logLineAfter(stack.logs, later, 'saved after answer', (l) => l.key === short(a3), 4000);
    assert.equal(await exists(join(stack.cacheDir, keyOf(a2))), false, 'the older file is gone');
    assert.ok(await exists(join(stack.cacheDir, keyOf(a3))));
  });

  it('a request arriving while its slot is being saved waits for that save and stays resident', async () => {
    // Saves take ~0.5 s here; the other slot is free, so without the wait the turn would start cold there.
    stack = await startStack({
      env: WRITE_BEHIND,
      sim: {
        cost: { timeScale: 1, kvBytesPerToken: 1000, prefillMsPerToken: 0.01, decodeMsPerToken: 1, saveMsPerMB: 5000 },
      },
    });
    const proxy = stack.proxy;
    const a = opening(2401);
    const first = await chat(stack, a);
    await eventually(
      () => proxy.state.pool.all().some((s) => s.busy) || undefined,
      3000,
      'the write-behind save to start',
    );
    const next = await chat(stack, continued(a, first.content, 2402));
    assert.equal(next.line.decision, 'resident');
    assert.equal(next.line.slot, first.line.slot);
    assert.ok(next.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n, JSON.stringify(next.timings));
  });
});
