/**
 * llama-server router mode: slot actions carry `model` in the body and `autoload=false`, so a save or a restore
 * never loads a model (with --models-max 1, loading one unloads the other).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nthChatLine } from '../support/log-lines.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';

describe('router mode', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      sim: {
        mode: 'router',
        modelsMax: 1,
        models: [
          { id: 'a', nSlots: 2 },
          { id: 'b', nSlots: 2 },
        ],
      },
      env: { BACKEND_TYPE: 'auto' },
    });
  });
  after(() => closeStack(stack));

  const chat = (model: string, seed: number) =>
    stack.openai.chat.completions.create({
      model,
      messages: [{ role: 'user', content: words(80, seed) }],
      max_tokens: 2,
    });

  it("saves each model's slot with the model in the request", async () => {
    await chat('a', 31);
    await nthChatLine(stack.logs, 1);
    await chat('b', 32);
    await nthChatLine(stack.logs, 2);
    assert.deepEqual(
      eventsOf(stack.sim, 'save').map((e) => [e.model, e.slot, e.ok]),
      [
        ['a', 0, true],
        ['b', 0, true],
      ],
    );
  });

  it('a, b, a with one model loaded at a time: every load is for a chat (restored first), none for a save', async () => {
    const res = await chat('a', 31);
    assert.equal(res.object, 'chat.completion');
    await nthChatLine(stack.logs, 3);
    const events = stack.sim.events;
    const loads = events.map((e, i) => [e, i] as const).filter(([e]) => e.type === 'load');
    assert.deepEqual(
      loads.map(([e]) => e.model),
      ['a', 'b', 'a'],
    );
    for (const [load, i] of loads) {
      // The proxy may load a model for the request that needs it, restore its cache, then chat; never save first.
      const next = events.slice(i + 1).find((e) => e.model === load.model && ['chat', 'save'].includes(e.type));
      assert.equal(next?.type, 'chat', `the load of ${load.model} (event ${i}) was followed by ${next?.type}`);
    }
    const lastLoad = loads.at(-1)![1];
    const restored = events.slice(lastLoad).find((e) => e.type === 'restore');
    assert.equal((restored as { ok?: boolean } | undefined)?.ok, true, 'a was restored from disk after being unloaded');
  });
});
