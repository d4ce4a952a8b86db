/**
 * A client that goes away mid-stream: the upstream request is aborted at once (llama-server stops generating),
 * and the slot is released, so the next request on a one-slot setup is served without waiting. A client that leaves
 * a non-streaming request is logged as its own abort (499), not as a backend failure, and the slot is no longer
 * taken to hold what it held before (the server had started on the new prompt).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, withDeadline } from '../support/deadline.js';
import { openStream } from '../support/net.js';
import { chat, opening, continued } from '../support/cache.js';
import { decodeOnlyCost, eventsOf } from '../support/sim-helpers.js';
import { postJson, startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';

describe('client disconnect mid-stream', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      sim: { models: [{ id: 'tiny', nSlots: 1 }], cost: decodeOnlyCost(10) },
      // A leaked slot would turn the follow-up into a quick 503 instead of a hang.
      env: { N_SLOTS: '1', ACQUIRE_TIMEOUT: '1' },
    });
  });
  after(() => closeStack(stack));

  it('aborts the upstream request at once and frees the slot', async () => {
    // 300 tokens at 10 ms: ~3 s if nobody stops it.
    const stream = await openStream(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'tell me a very long story' }],
      max_tokens: 300,
      stream: true,
    });
    assert.equal(stream.status, 200);
    assert.match(stream.received, /^data: /);
    const cut = performance.now();
    stream.destroy();

    const aborted = await eventually(
      () => eventsOf(stack.sim, 'chat_aborted')[0],
      1000,
      'the backend to see the abort',
    );
    assert.ok(
      performance.now() - cut < 1000,
      `the backend stopped ${Math.round(performance.now() - cut)} ms after the disconnect`,
    );
    assert.ok(aborted.predicted_n < 100, `generated ${aborted.predicted_n} of 300 tokens`);
    const line = await stack.logs.waitFor(
      (l) => l.msg === 'chat' && l.client_gone === true,
      1000,
      'the chat line of the cut request',
    );
    assert.equal(line.slot, 0);

    const next = performance.now();
    const res = await withDeadline(
      stack.openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'next' }],
        max_tokens: 2,
      }),
      2000,
      'the follow-up request',
    );
    assert.equal(res.object, 'chat.completion');
    assert.ok(performance.now() - next < 1000, `the follow-up took ${Math.round(performance.now() - next)} ms`);

    const health = (await (await fetch(`${stack.url}/health`)).json()) as { slots: { busy: number } };
    assert.equal(health.slots.busy, 0, 'no slot is left locked');
  });

  it('a client that leaves while queued for a slot is dropped from the queue and never reaches the backend', async () => {
    const from = stack.sim.events.length;
    const busy = await openStream(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'hold the only slot for a while' }],
      max_tokens: 30,
      stream: true,
    });
    const waiting = new AbortController();
    const queued = postJson(
      stack.url,
      '/v1/chat/completions',
      {
        model: 'tiny',
        messages: [{ role: 'user', content: 'the impatient one' }],
        max_tokens: 1,
      },
      { signal: waiting.signal },
    ).catch((err: Error) => err);
    // The pool's queue is private; reading its length is the only way to know, without sleeping, that the request waits.
    const pool = stack.proxy.state.pool as unknown as { waiters: unknown[] };
    await eventually(() => pool.waiters.length === 1, 5000, 'the second request to queue for the slot');
    waiting.abort();
    assert.ok((await queued) instanceof Error);
    await stack.logs.waitFor(
      (l) => l.msg === 'chat' && l.outcome === 'client_gone_while_waiting',
      1000,
      'the chat line of the impatient client',
    );
    assert.equal(pool.waiters.length, 0);

    busy.destroy();
    const res = await withDeadline(
      stack.openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'next' }],
        max_tokens: 1,
      }),
      2000,
      'the follow-up request',
    );
    assert.equal(res.object, 'chat.completion');
    assert.equal(
      eventsOf(stack.sim, 'chat', from).filter((e) => e.predicted_n === 1).length,
      1,
      'only the follow-up reached the backend',
    );
  });
  it('a client leaving a non-streaming request: logged as its abort (499), and the slot content is forgotten', async () => {
    const a = opening(711);
    const first = await chat(stack, a, { maxTokens: 2 }); // saved after the answer (SAVE_POLICY=always); the slot holds A
    const held = stack.sim.slotTokens('tiny', 0)!.join(' ');
    const leaving = new AbortController();
    const answer = postJson(
      stack.url,
      '/v1/chat/completions',
      {
        model: 'tiny',
        messages: opening(712),
        max_tokens: 300, // ~3 s of decoding
      },
      { signal: leaving.signal },
    ).catch((err: Error) => err);
    // The backend has started on the new prompt: the slot no longer holds A.
    await eventually(
      () => stack.sim.slotTokens('tiny', 0)!.join(' ') !== held,
      2000,
      'the backend to start on the new prompt',
    );
    leaving.abort();
    assert.ok((await answer) instanceof Error);
    const line = await stack.logs.waitFor(
      (l) => l.msg === 'chat' && l.words === 64 && l.key !== first.line.key,
      2000,
      'the chat line of the request the client left',
    );
    assert.equal(line.status, 499);
    assert.equal(line.client_gone, true);
    await eventually(() => eventsOf(stack.sim, 'chat_aborted').length > 0, 5000, 'the backend to stop');

    // A comes back: the proxy knows the slot lost it, so it restores A from disk instead of trusting the slot.
    const next = await chat(stack, continued(a, first.content, 713), { maxTokens: 2 });
    assert.equal(next.line.decision, 'restore');
    assert.equal(next.line.restore?.ok, true);
    assert.ok(next.timings.cache_n >= first.timings.prompt_n, `cache_n ${next.timings.cache_n}`);
  });
});
