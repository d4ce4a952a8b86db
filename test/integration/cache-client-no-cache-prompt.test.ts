/**
 * A client's `cache_prompt: false` is kept, also when its body carries its own `id_slot` (which the proxy
 * replaces), and a request that asks the server not to cache is not cached by the proxy either: nothing restored
 * before it, nothing saved after it, and the slot it used is not taken to hold a reusable conversation.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { chat, continued, logLineAfter, MODEL, opening, slotFileEvents } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { startTap } from '../support/tap.js';
import type { Tap } from '../support/tap.js';
import { closeStack } from '../support/teardown.js';

describe("a client's cache_prompt: false", { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  let tap: Tap | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    await tap?.close();
    stack = tap = undefined;
  });

  it('reaches the backend next to the proxy id_slot, and the proxy neither restores nor saves for it', async () => {
    stack = await startStack(); // SAVE_POLICY=always: every big request is saved after its answer
    tap = await startTap(stack.sim.url);
    await stack.restartProxy({ LLAMA_URL: tap.url, BACKEND_TYPE: 'llama-server' });
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
