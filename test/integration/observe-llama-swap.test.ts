/**
 * The status API and the admin erase behind llama-swap: the backend's loaded model, slots per model, the model's
 * fingerprint, and an erase that names its model and never loads one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api } from '../support/proxycache-api.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startLlamaSwapStack } from '../support/llama-swap-stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { words } from '../support/text.js';

const A = 'model-a';
const B = 'model-b';

describe('status and admin API behind llama-swap', { timeout: 60_000 }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startLlamaSwapStack([A, B]);
    await stack.openai.chat.completions.create({
      model: A,
      messages: [{ role: 'user', content: words(80, 31) }],
      max_tokens: 2,
    });
    await stack.openai.chat.completions.create({
      model: B,
      messages: [{ role: 'user', content: words(80, 32) }],
      max_tokens: 2,
    });
  });
  after(() => closeStack(stack));

  it('status shows the loaded model, the slots per model and what they hold', async () => {
    const s = (await api(stack.url, 'GET', '/proxycache/status')).body;
    assert.equal(s.backends[0].kind, 'llama-swap');
    assert.deepEqual(s.backends[0].loaded_models, [B], 'B swapped A out');
    assert.ok(s.backends[0].fingerprints[B], JSON.stringify(s.backends[0].fingerprints));
    const models = [...new Set(s.slots.map((slot: any) => slot.model))].sort();
    assert.deepEqual(models, [A, B]);
    const holdingB = s.slots.filter((slot: any) => slot.model === B && slot.content);
    assert.equal(holdingB.length, 1);
    assert.equal(holdingB[0].content.model, B);
    // A's slot still shows what it held: the proxy forgets an unloaded model's slots at the next request (status
    // only reads); loaded_models above tells the reader that A's server is gone.
  });

  it('an erase needs the model behind llama-swap, erases through /upstream/{model}/, and never loads a model', async () => {
    const ambiguous = await api(stack.url, 'POST', '/proxycache/slots/0/0/erase');
    assert.equal(ambiguous.status, 400);
    assert.equal(ambiguous.body.error.param, 'model');
    const slot = (await api(stack.url, 'GET', '/proxycache/status')).body.slots.find(
      (x: any) => x.model === B && x.content,
    ).id;
    const erased = await api(stack.url, 'POST', `/proxycache/slots/0/${slot}/erase?model=${B}`);
    assert.equal(erased.status, 200, JSON.stringify(erased.body));
    assert.equal(erased.body.erased, true);
    assert.deepEqual(
      eventsOf(stack.sim, 'erase').map((e) => [e.model, e.slot]),
      [[B, slot]],
    );
    const loads = eventsOf(stack.sim, 'load').length;
    const notLoaded = await api(stack.url, 'POST', `/proxycache/slots/0/0/erase?model=${A}`);
    assert.equal(notLoaded.status, 200);
    assert.equal(notLoaded.body.erased, false);
    assert.equal(eventsOf(stack.sim, 'load').length, loads, 'A was not loaded to erase its slot');
  });
});
