/** ACQUIRE_TIMEOUT: a request that finds every slot busy waits that long, then gets a 503 in the OpenAI shape. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStream } from '../support/net.js';
import { decodeOnlyCost, eventsOf } from '../support/sim-helpers.js';
import { postJson, startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';

describe('ACQUIRE_TIMEOUT', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      sim: { models: [{ id: 'tiny', nSlots: 1 }], cost: decodeOnlyCost(10) },
      env: { N_SLOTS: '1', ACQUIRE_TIMEOUT: '0.2' },
    });
  });
  after(() => closeStack(stack));

  it('answers 503 with an OpenAI error body when the only slot stays busy', async () => {
    // ~600 ms of decoding holds the only slot.
    const slow = await openStream(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: 'a long answer please' }],
      max_tokens: 60,
      stream: true,
    });
    const started = performance.now();
    const res = await postJson(
      stack.url,
      '/v1/chat/completions',
      {
        model: 'tiny',
        messages: [{ role: 'user', content: 'me too' }],
        max_tokens: 1,
      },
      { signal: AbortSignal.timeout(3000) },
    );
    const waited = performance.now() - started;
    slow.destroy();

    assert.equal(res.status, 503);
    assert.match(String(res.headers.get('content-type')), /application\/json/);
    assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(res.body.error.type, 'service_unavailable_error');
    assert.equal(res.body.error.code, 'no_slot_available');
    assert.equal(res.body.error.param, null);
    assert.match(res.body.error.message, /busy for 0\.2 s \(ACQUIRE_TIMEOUT\)/);
    assert.ok(waited >= 180 && waited < 1000, `waited ${Math.round(waited)} ms for a 0.2 s ACQUIRE_TIMEOUT`);
    assert.equal(
      eventsOf(stack.sim, 'chat').filter((e) => e.predicted_n === 1).length,
      0,
      'the refused request never reached the backend',
    );
    const line = await stack.logs.waitFor(
      (l) => l.msg === 'chat' && l.status === 503,
      1000,
      'the chat line of the refused request',
    );
    assert.equal(line.outcome, 'no_slot');
  });
});
