/**
 * Trust nothing the server did not confirm (issue 7.5, 7.6): a save whose token count does not match what the
 * slot is believed to hold is discarded; a slot believed to hold a conversation is checked with GET /slots when
 * the backend was quiet; a server that clears idle slots at each task start (llama-server's default
 * configuration) is found out at start-up, and the proxy saves before each task and restores from disk.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { chat, continued, exists, keyOf, logLineAfter, metaPath, opening, slotFileEvents } from '../support/cache.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { RECHECK_AFTER_QUIET_MS } from '../../src/generation/slot-truth.js';
import { words } from '../support/text.js';

const short = (messages: Parameters<typeof keyOf>[0]) => keyOf(messages).slice(0, 16);

describe('the proxy trusts only what the server confirms', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  it('a save of a slot another client overwrote is discarded: file deleted, no meta, nothing restored from it', async () => {
    stack = await startStack({ env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0' } });
    const a = opening(3101);
    const first = await chat(stack, a);
    // Another client uses a's slot directly, with a longer conversation of its own.
    const other = await postJson(stack.sim.url, '/v1/chat/completions', {
      model: 'tiny', max_tokens: 4, id_slot: first.line.slot, messages: [{ role: 'user', content: words(300, 3102) }],
    });
    assert.equal(other.status, 200);
    await chat(stack, opening(3103));
    const evicting = await chat(stack, opening(3104)); // a's slot is the least recently used: evicted with a save
    assert.equal(evicting.line.slot, first.line.slot);
    assert.equal(evicting.line.evict_save.ok, false, JSON.stringify(evicting.line.evict_save));
    assert.equal(evicting.line.evict_save.unverified, true);
    assert.equal(await exists(join(stack.cacheDir, keyOf(a))), false, 'the other client\'s KV is not kept under a\'s key');
    assert.equal(await exists(metaPath(stack.metaDir, keyOf(a))), false);
    const back = await chat(stack, continued(a, first.content, 3105));
    assert.notEqual(back.line.decision, 'restore');
  });

  it('after a quiet spell, a slot that lost its conversation (server restarted) is restored from disk, not trusted', async () => {
    stack = await startStack({ env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0.4' } });
    const a = opening(3201);
    const mark = stack.logs.lines.length;
    const first = await chat(stack, a);
    await logLineAfter(stack.logs, mark, 'saved after answer', (l) => l.key === short(a));
    await stack.sim.restart();
    // The proxy hears nothing from the backend for longer than its re-check threshold.
    await new Promise((resolve) => setTimeout(resolve, RECHECK_AFTER_QUIET_MS + 100));
    const back = await chat(stack, continued(a, first.content, 3202));
    assert.equal(back.line.slot_check, 'restarted');
    assert.equal(back.line.decision, 'restore');
    assert.ok(back.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n, JSON.stringify(back.timings));
  });

  it('a server that clears idle slots (no -np) is detected at start-up; every later turn is restored from disk', async () => {
    // The simulator's default: 4 slots on one unified KV buffer, idle slots moved to the RAM cache at each task.
    stack = await startStack({ sim: { models: [{ id: 'tiny' }], cacheRamMiB: 8192 }, env: { SAVE_POLICY: 'smart', N_SLOTS: '4' } });
    await logLineAfter(stack.logs, 0, 'the server clears idle slots when a task starts (llama-server default: unified KV, --cache-idle-slots): saving idle slots before each task and restoring from disk');
    const conversations = [opening(3301), opening(3302), opening(3303)];
    const last = [];
    for (const c of conversations) last.push({ messages: c, result: await chat(stack, c) });
    for (let turn = 0; turn < 2; turn++) {
      for (const [i, conv] of last.entries()) {
        const messages = continued(conv.messages, conv.result.content, 3400 + turn * 10 + i);
        const result = await chat(stack, messages);
        const before = conv.result.timings.cache_n + conv.result.timings.prompt_n;
        assert.ok(['restore', 'resident'].includes(result.line.decision), JSON.stringify(result.line));
        assert.ok(result.timings.cache_n >= before, `turn ${turn} of ${i}: ${JSON.stringify(result.timings)} after ${before}`);
        last[i] = { messages, result };
      }
    }
    const failedSaves = slotFileEvents(stack.sim, 'save').filter((e) => !e.ok || e.n_tokens === 0);
    assert.deepEqual(failedSaves, [], 'no save found its slot already cleared');
  });
});
