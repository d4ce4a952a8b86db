/**
 * A plain llama-server restarted behind a running proxy: its slots are empty, though the proxy believed they held
 * conversations. Before the first request is pinned to its slot, GET /slots shows the slots empty: the proxy
 * forgets what every slot of that backend held, and every conversation is restored from disk instead of being
 * prefilled from scratch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chat, continued, opening, slotFileEvents } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

describe('backend restarted behind the proxy', () => {
  let stack: Stack;
  before(async () => {
    // The seed's policy saves after every turn, so both conversations are on disk when the backend restarts.
    stack = await startStack({ env: { SAVE_POLICY: 'always' } });
  });
  after(() => closeStack(stack));

  it('notices the empty slots before pinning, forgets them, and restores both conversations from disk', async () => {
    const a = opening(901);
    const b = opening(902);
    const a1 = await chat(stack, a);
    const b1 = await chat(stack, b);
    assert.notEqual(a1.line.slot, b1.line.slot, 'one conversation per slot');

    await stack.sim.restart();

    const a2 = await chat(stack, continued(a, a1.content, 903));
    assert.equal(a2.line.slot_check, 'restarted', 'GET /slots showed the slot it believed to hold A empty');
    assert.equal(a2.line.decision, 'restore');
    assert.ok(a2.timings.cache_n > 50, `A reused ${a2.timings.cache_n} tokens after the restore`);
    await stack.logs.waitFor(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('the server lost every slot'),
      2000,
      'the warning',
    );

    const mark = stack.sim.events.length;
    const b2 = await chat(stack, continued(b, b1.content, 904));
    assert.equal(b2.line.decision, 'restore', 'B is restored from disk, not trusted to be resident');
    assert.equal(slotFileEvents(stack.sim, 'restore', mark).filter((e) => e.ok).length, 1);
    assert.ok(b2.timings.cache_n > 50, `B reused ${b2.timings.cache_n} tokens after the restore`);
  });
});
