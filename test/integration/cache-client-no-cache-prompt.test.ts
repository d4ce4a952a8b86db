/**
 * A client's `cache_prompt: false` is kept, also when its body carries its own `id_slot` (which the proxy
 * replaces), and a request that asks the server not to cache is not cached by the proxy either: nothing restored
 * before it, nothing saved after it, and the slot it used is not taken to hold a reusable conversation.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { chat, continued, logLineAfter, MODEL, opening, slotFileEvents } from '../support/cache.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';
import type { TappedStack } from '../support/tapped-stack.js';

describe("a client's cache_prompt: false", { timeout: 60_000 }, () => {
  let tapped: TappedStack | undefined;
  afterEach(async () => {
    if (tapped) await closeTappedStack(tapped);
    tapped = undefined;
  });

  it('reaches the backend next to the proxy id_slot, and the proxy neither restores nor saves for it', async () => {
    tapped = await startTappedStack(); // SAVE_POLICY=always: every big request is saved after its answer
    const { stack, tap } = tapped;
    const a = opening(701);
    const first = await chat(stack, a); // saved: the continuation below could restore it
    await stack.restartProxy(); // empty slots: only a restore could bring A back
    const simMark = stack.sim.events.length;
    const logMark = stack.logs.lines.length;
    const tapMark = tap.requests.length;

    const res = await stack.openai.chat.completions.create({
      model: MODEL,
      messages: continued(a, first.content, 702),
      max_tokens: 4,
      // Fields llama-server honours; the SDK passes them through.
      ...({ cache_prompt: false, id_slot: 5 } as object),
    });
    assert.equal(res.object, 'chat.completion');
    const line = await logLineAfter(stack.logs, logMark, 'chat');

    const forwarded = tap.requests.slice(tapMark).filter((r) => r.path === '/v1/chat/completions');
    assert.equal(forwarded.length, 1);
    assert.equal(forwarded[0]!.body.cache_prompt, false, "the client's cache_prompt: false is kept");
    assert.equal(forwarded[0]!.body.id_slot, line.slot, 'the proxy chose the slot');
    assert.deepEqual(
      slotFileEvents(stack.sim, 'restore', simMark),
      [],
      'nothing restored for a prompt the server will not reuse',
    );
    assert.deepEqual(slotFileEvents(stack.sim, 'save', simMark), [], 'nothing saved');
    assert.equal(line.decision, 'small', 'not worth caching for the proxy: cache_prompt false makes it not big');
    assert.equal(line.big, false, 'not cacheable');
  });
});
