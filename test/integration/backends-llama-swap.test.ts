/**
 * Behind llama-swap: slot actions go to `/upstream/{model}/slots/…` of the right model, and slot state is per
 * model. Slot 0 of model A is not slot 0 of model B, and a swap kills A's server, so after B ran, A's conversation
 * must come back from disk (the seed's defect 3 treated it as still resident).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nthChatLine } from '../support/log-lines.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startLlamaSwapStack } from '../support/llama-swap-stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';

// A name that needs URL encoding in the /upstream/{model}/ path.
const A = 'qwen/coder:7b';
const B = 'llama-3b';

describe('llama-swap: per-model slots', () => {
  let stack: Stack;
  before(async () => {
    stack = await startLlamaSwapStack([A, B]);
  });
  after(() => closeStack(stack));

  const conversationA = [{ role: 'user' as const, content: words(80, 21) }];
  const conversationB = [{ role: 'user' as const, content: words(80, 22) }];

  it('saves each conversation through /upstream/{model}/ for its own model', async () => {
    await stack.openai.chat.completions.create({ model: A, messages: conversationA, max_tokens: 2 });
    const lineA = await nthChatLine(stack.logs, 1);
    assert.equal((lineA.save as { ok: boolean }).ok, true, JSON.stringify(lineA.save));
    await stack.openai.chat.completions.create({ model: B, messages: conversationB, max_tokens: 2 });
    const lineB = await nthChatLine(stack.logs, 2);
    assert.equal((lineB.save as { ok: boolean }).ok, true, JSON.stringify(lineB.save));
    // Both used "slot 0" of their own model: the same id, two different slots.
    assert.equal(lineA.slot, 0);
    assert.equal(lineB.slot, 0);
    assert.deepEqual(
      eventsOf(stack.sim, 'save').map((e) => [e.model, e.slot, e.ok]),
      [
        [A, 0, true],
        [B, 0, true],
      ],
    );
    assert.deepEqual(
      eventsOf(stack.sim, 'load').map((e) => e.model),
      [A, B],
      'B swapped A out',
    );
  });

  it("after the swap, A's conversation is restored from disk, never treated as resident", async () => {
    const before = stack.sim.events.length;
    await stack.openai.chat.completions.create({ model: A, messages: conversationA, max_tokens: 2 });
    const line = await nthChatLine(stack.logs, 3);
    assert.equal(line.decision, 'restore');
    assert.equal((line.restore as { ok: boolean }).ok, true, JSON.stringify(line.restore));
    const later = stack.sim.events.slice(before);
    const restore = later.findIndex((e) => e.type === 'restore' && e.model === A && e.ok);
    const chat = later.findIndex((e) => e.type === 'chat' && e.model === A);
    assert.ok(restore >= 0 && restore < chat, 'the restore ran on A before the chat');
    const chatEvent = eventsOf(stack.sim, 'chat', before).find((e) => e.model === A)!;
    assert.ok(
      chatEvent.cache_n > 0.9 * (chatEvent.cache_n + chatEvent.prompt_n),
      `cache_n ${chatEvent.cache_n}, prompt_n ${chatEvent.prompt_n}`,
    );
  });
});
