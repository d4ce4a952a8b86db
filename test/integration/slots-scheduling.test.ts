/**
 * The scheduler spreads work over every slot: the seed never updated its "least recently used" time, so with free
 * slots every request landed on slot 0 and requests queued behind it while the other slots idled.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import { nthChatLine } from '../support/log-lines.js';
import { decodeOnlyCost, eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';

describe('slot scheduling uses every slot', () => {
  let stack: Stack;
  before(async () => {
    // 8 ms per generated token: a 40-token answer holds its slot for ~320 ms.
    stack = await startStack({ sim: { models: [{ id: 'tiny', nSlots: 2 }], cost: decodeOnlyCost(8) } });
  });
  after(() => closeStack(stack));

  it('sequential requests rotate over the free slots (LRU time is updated on every use)', async () => {
    const from = stack.sim.events.length;
    for (let i = 0; i < 4; i++) {
      const res = await stack.openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: `short question number ${i}` }],
        max_tokens: 1,
      });
      assert.equal(res.object, 'chat.completion');
    }
    await nthChatLine(stack.logs, 4);
    const logged = stack.logs
      .withMsg('chat')
      .slice(0, 4)
      .map((l) => l.slot);
    assert.deepEqual(logged, [0, 1, 0, 1], 'slots the proxy pinned');
    assert.deepEqual(
      eventsOf(stack.sim, 'chat', from).map((e) => e.slot),
      [0, 1, 0, 1],
      'slots the backend used',
    );
  });

  it('two long concurrent requests run on two slots at the same time', async () => {
    const from = stack.sim.events.length;
    const start = (seed: number) =>
      stack.openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: words(10, seed) }],
        max_tokens: 40,
        stream: true,
      });
    const streams = await withDeadline(Promise.all([start(11), start(12)]), 5000, 'both streams to start');
    const iterators = streams.map((s) => s[Symbol.asyncIterator]());
    // A first chunk means the backend is decoding that request now.
    await withDeadline(Promise.all(iterators.map((it) => it.next())), 5000, 'the first chunk of both streams');
    const slots = (await (await fetch(`${stack.sim.url}/slots`)).json()) as Array<{
      id: number;
      is_processing: boolean;
    }>;
    assert.deepEqual(
      slots.map((s) => s.is_processing),
      [true, true],
      'both slots decode at once',
    );

    await withDeadline(
      Promise.all(
        iterators.map(async (it) => {
          while (!(await it.next()).done);
        }),
      ),
      3000,
      'both streams to end',
    );
    const chats = eventsOf(stack.sim, 'chat', from);
    assert.deepEqual(chats.map((e) => e.slot).sort(), [0, 1]);
    assert.ok(chats.every((e) => e.predicted_n === 40));
  });
});
