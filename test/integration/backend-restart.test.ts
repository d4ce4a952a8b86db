/**
 * A plain llama-server restarted behind a running proxy, faster than the proxy's GET /slots re-check threshold
 * (slot-truth.ts; see slot-truth.test.ts for a restart caught before pinning): its slots are empty, though the proxy
 * believed they held conversations. The first request that finds its slot empty makes the proxy forget what every
 * slot of that backend held, so the other conversations are restored from disk instead of being prefilled.
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

  it('notices the empty slot, forgets the others, and restores the other conversation from disk', async () => {
    const a = opening(901);
    const b = opening(902);
    const a1 = await chat(stack, a);
    const b1 = await chat(stack, b);
    assert.notEqual(a1.line.slot, b1.line.slot, 'one conversation per slot');

    await stack.sim.restart();

    const a2 = await chat(stack, continued(a, a1.content, 903));
    assert.equal(a2.line.decision, 'resident', 'the proxy still believed the slot held A');
    assert.ok(a2.timings.cache_n < 16, `the restarted backend reused ${a2.timings.cache_n} tokens`);
    await stack.logs.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('a slot had lost the conversation'), 2000, 'the warning');

    const mark = stack.sim.events.length;
    const b2 = await chat(stack, continued(b, b1.content, 904));
    assert.equal(b2.line.decision, 'restore', 'B is restored from disk, not trusted to be resident');
    assert.equal(slotFileEvents(stack.sim, 'restore', mark).filter((e) => e.ok).length, 1);
    assert.ok(b2.timings.cache_n > 50, `B reused ${b2.timings.cache_n} tokens after the restore`);
  });
});
