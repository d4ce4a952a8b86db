/**
 * Graceful shutdown: an answer still streaming when the proxy is asked to stop is allowed to finish, and the
 * conversation it produced is saved before the proxy exits (smart policy).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import { decodeOnlyCost, eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { words } from '../support/text.js';

describe('shutdown while an answer is streaming', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      sim: { models: [{ id: 'tiny', nSlots: 1 }], cost: decodeOnlyCost(10) },
      env: { N_SLOTS: '1', SAVE_POLICY: 'smart' },
    });
  });
  after(() => closeStack(stack));

  it('lets the stream finish, then saves its conversation', async () => {
    const stream = await stack.openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: words(60, 77) }],
      max_tokens: 30,
      stream: true,
    });
    const chunks: unknown[] = [];
    const reading = (async () => {
      for await (const chunk of stream) chunks.push(chunk);
    })();
    await withDeadline(
      stack.logs.waitFor((l) => l.msg === 'backend kind detected' || l.msg === 'proxycache listening'),
      1000,
      'the proxy',
    );
    const closing = stack.proxy.close();
    await withDeadline(reading, 3000, 'the stream to finish during shutdown');
    const last = chunks.at(-1) as { choices: Array<{ finish_reason: string | null }> };
    assert.equal(last.choices[0]?.finish_reason, 'length', 'the answer was complete');
    await withDeadline(closing, 3000, 'the proxy to close');
    const saves = eventsOf(stack.sim, 'save');
    assert.equal(saves.length, 1, 'the conversation was saved on shutdown');
    assert.equal(saves[0]!.ok, true);
    await stack.restartProxy();
  });
});
