/**
 * A small request must not overwrite a slot whose big cache exists nowhere else (the seed's defect 4). The big
 * content is made unsaved by failing the save after its request; see chooseVictim in src/slots/slot-planner.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { nthChatLine } from '../support/log-lines.js';
import { openStream } from '../support/net.js';
import { decodeOnlyCost, eventIndex, eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';

describe('a small request never destroys an unsaved big cache', () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack({ sim: { models: [{ id: 'tiny', nSlots: 2 }], cost: decodeOnlyCost(10) } });
  });
  afterEach(() => closeStack(stack));

  /** A big request whose post-request save fails: its slot then holds the only copy. Returns where it is and what. */
  async function bigUnsaved(): Promise<{ slot: number; filename: string; tokens: number }> {
    stack.sim.injectFault({ action: 'save', status: 500, message: 'disk full' });
    await stack.openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: words(60, 7) }],
      max_tokens: 2,
    });
    const line = await nthChatLine(stack.logs, 1);
    assert.equal(line.big, true);
    assert.equal((line.save as { ok: boolean }).ok, false, 'the save after the big request failed');
    const failed = eventsOf(stack.sim, 'save').at(-1)!;
    assert.equal(failed.ok, false);
    return {
      slot: line.slot as number,
      filename: failed.filename,
      tokens: stack.sim.slotTokens('tiny', line.slot as number)!.length,
    };
  }

  const small = (text: string) =>
    stack.openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: text }], max_tokens: 1 });

  it('goes to another idle slot, even one used more recently', async () => {
    const big = await bigUnsaved();
    await small('first small one'); // takes the empty slot
    await small('second small one'); // the big slot is now least recently used, yet must be spared
    await nthChatLine(stack.logs, 3);
    const smallSlots = stack.logs
      .withMsg('chat')
      .filter((l) => l.big === false)
      .map((l) => l.slot);
    assert.deepEqual(smallSlots, [1 - big.slot, 1 - big.slot]);
    assert.equal(stack.sim.slotTokens('tiny', big.slot)!.length, big.tokens, 'the big slot still holds its tokens');
    assert.equal(eventsOf(stack.sim, 'save').length, 1, 'nothing needed saving');
  });

  it('saves the big cache first when its slot is the only idle one', async () => {
    const big = await bigUnsaved();
    const mark = stack.sim.events.length; // after the proxy's start-up probe (one-token chats too)
    // Keep the other slot busy (~500 ms of decoding).
    const busy = await openStream(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'keep the other slot busy' }],
      max_tokens: 50,
      stream: true,
    });
    try {
      await small('a small one that only fits on the big slot');
    } finally {
      busy.destroy();
    }
    const line = await stack.logs.waitFor(
      (l) => l.msg === 'chat' && l.big === false && l.slot === big.slot,
      2000,
      'the small request on the big slot',
    );
    assert.equal((line.evict_save as { ok: boolean } | undefined)?.ok, true, 'the proxy saved the big content before');
    const saved = eventIndex(
      stack.sim,
      (e) => e.type === 'save' && e.ok && e.filename === big.filename && e.slot === big.slot,
    );
    const smallChat = eventIndex(
      stack.sim,
      (e) => stack.sim.events.indexOf(e) >= mark && e.type === 'chat' && e.slot === big.slot && e.predicted_n === 1,
    );
    assert.ok(saved >= 0, 'the big content was saved under its key');
    assert.ok(smallChat > saved, 'the save came before the small chat overwrote the slot');
    const savedEvent = stack.sim.events[saved] as { n_tokens: number };
    assert.equal(savedEvent.n_tokens, big.tokens, 'what was saved is the big conversation');
  });
});
