/**
 * llama-server router mode: slot actions carry `model` in the body and `autoload=false`, so a save or a restore
 * never loads a model (with --models-max 1, loading one unloads the other). What only a model's slots hold is saved
 * before a request for another model unloads it, its requests in flight waited for (the router lets them finish
 * first), and nothing is saved when the router has room for both.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { nthChatLine } from '../support/log-lines.js';
import { eventsOf } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack, StackOptions } from '../support/stack.js';
import { keyOf } from '../support/cache.js';
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

describe('router mode: saves before another model is loaded', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });
  /** The smart policy with write-behind off: an answer stays unsaved until something needs it saved. */
  const startRouter = (modelsMax: number, cost: NonNullable<StackOptions['sim']>['cost'] = { timeScale: 0 }) =>
    startStack({
      sim: {
        mode: 'router',
        modelsMax,
        models: [
          { id: 'a', nSlots: 2 },
          { id: 'b', nSlots: 2 },
        ],
        cost: { kvBytesPerToken: 1000, ...cost },
      },
      env: { BACKEND_TYPE: 'auto', SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0' },
    });
  const messages = (seed: number) => [{ role: 'user' as const, content: words(80, seed) }];

  it('with room for both (--models-max 2), a request for the other model saves nothing first', async () => {
    stack = await startRouter(2);
    await stack.openai.chat.completions.create({ model: 'a', messages: messages(41), max_tokens: 2 });
    await stack.openai.chat.completions.create({ model: 'b', messages: messages(42), max_tokens: 2 });
    await nthChatLine(stack.logs, 2);
    assert.deepEqual(stack.logs.withMsg('saved before model swap'), []);
    assert.deepEqual(eventsOf(stack.sim, 'save'), []);
    assert.deepEqual(stack.sim.loadedModels().sort(), ['a', 'b']);
  });

  it('with room for both, an answer given while a request for the other model runs is not saved on its time', async () => {
    stack = await startRouter(2, { timeScale: 1, decodeMsPerToken: 10, prefillMsPerToken: 0, modelLoadMs: 0 });
    const s = stack;
    await s.openai.chat.completions.create({ model: 'b', messages: messages(45), max_tokens: 2 }); // b loaded
    let answering!: () => void;
    const firstChunk = new Promise<void>((resolve) => (answering = resolve));
    const a = (async () => {
      const stream = await s.openai.chat.completions.create({
        model: 'a',
        messages: messages(46),
        max_tokens: 30,
        stream: true,
      });
      for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) answering();
    })();
    await firstChunk;
    // A long answer on b, pending while a's ends: both models stay loaded, nothing needs saving.
    const b = s.openai.chat.completions.create({ model: 'b', messages: messages(47), max_tokens: 40 });
    await a;
    await b;
    await nthChatLine(s.logs, 3);
    const lineA = s.logs.withMsg('chat').find((l) => l.model === 'a');
    assert.equal(lineA?.save, undefined, JSON.stringify(lineA));
    assert.deepEqual(eventsOf(s.sim, 'save'), []);
    assert.deepEqual(s.sim.loadedModels().sort(), ['a', 'b']);
  });

  it("at --models-max 1, a request for the other model waits for the first one's request in flight and saves its conversation before the unload", async () => {
    stack = await startRouter(1, { timeScale: 1, decodeMsPerToken: 10, prefillMsPerToken: 0, modelLoadMs: 0 });
    const s = stack;
    const onA = messages(43);
    let answering!: () => void;
    const firstChunk = new Promise<void>((resolve) => (answering = resolve));
    const a = (async () => {
      const stream = await s.openai.chat.completions.create({
        model: 'a',
        messages: onA,
        max_tokens: 30,
        stream: true,
      });
      for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) answering();
    })();
    await firstChunk;
    await s.openai.chat.completions.create({ model: 'b', messages: messages(44), max_tokens: 2 });
    await a;
    const events = s.sim.events;
    const saveA = events.findIndex((e) => e.type === 'save' && e.model === 'a' && e.filename === keyOf(onA, 'a'));
    const loadB = events.findIndex((e) => e.type === 'load' && e.model === 'b');
    // Saved after its answer (a request for another model waits) or before the swap, whichever comes first.
    assert.ok(saveA >= 0 && saveA < loadB, `saved (#${saveA}) before b was loaded (#${loadB})`);
  });
});
