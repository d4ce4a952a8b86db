/**
 * SAVE_POLICY=smart behind llama-swap (one model at a time): a request for another model unloads the running one,
 * so what only its slots hold is saved first — before the other model is loaded, and never by a request that would
 * itself load a model. After the swap back, the conversation comes back from disk.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { continued, keyOf, logLineAfter } from '../support/cache.js';
import type { Message, Timings } from '../support/cache.js';
import { withDeadline } from '../support/deadline.js';
import { decodeOnlyCost, eventsOf } from '../support/sim-helpers.js';
import { startLlamaSwapStack } from '../support/llama-swap-stack.js';
import type { Stack, StackOptions } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { words } from '../support/text.js';

const A = 'model-a';
const B = 'model-b';

function swapStack(sim: StackOptions['sim'] = {}): Promise<Stack> {
  return startLlamaSwapStack([A, B], { sim, env: { SAVE_POLICY: 'smart' } });
}

/** One non-streaming chat for `model`; resolves with the reply and the proxy's 'chat' line for it. */
async function chatModel(
  stack: Stack,
  model: string,
  messages: readonly Message[],
): Promise<{ content: string; timings: Timings; line: Record<string, any> }> {
  const mark = stack.logs.lines.length;
  const res = await stack.openai.chat.completions.create({ model, messages: [...messages], max_tokens: 8 });
  const line = await logLineAfter(stack.logs, mark, 'chat', (l) => l.model === model);
  return {
    content: res.choices[0]?.message.content ?? '',
    timings: (res as unknown as { timings: Timings }).timings,
    line,
  };
}

const loads = (stack: Stack, from = 0) => eventsOf(stack.sim, 'load', from).map((e) => e.model);

describe('smart policy behind llama-swap', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  it("A's slot is saved before B is loaded, the save loads nothing, and A comes back from disk after B", async () => {
    stack = await swapStack();
    const convA: Message[] = [{ role: 'user', content: words(80, 3101) }];
    const convB: Message[] = [{ role: 'user', content: words(80, 3102) }];

    const first = await chatModel(stack, A, convA);
    assert.equal(first.line.save, undefined, 'no save after the turn');
    assert.deepEqual(eventsOf(stack.sim, 'save'), []);
    assert.deepEqual(loads(stack), [A]);

    const mark = stack.sim.events.length;
    const onB = await chatModel(stack, B, convB);
    assert.equal(onB.line.status, 200);
    const after = stack.sim.events.slice(mark);
    const saveA = after.findIndex((e) => e.type === 'save' && e.model === A && e.filename === keyOf(convA, A) && e.ok);
    const loadB = after.findIndex((e) => e.type === 'load' && e.model === B);
    assert.ok(saveA >= 0, "A's conversation was saved");
    assert.ok(loadB > saveA, `the save (#${saveA}) precedes the load of B (#${loadB})`);
    assert.deepEqual(loads(stack), [A, B], 'the save did not load A again');
    assert.ok(stack.logs.withMsg('saved before model swap').some((l) => l.model === A && l.for_model === B));

    const restoreMark = stack.sim.events.length;
    const back = await chatModel(stack, A, continued(convA, first.content, 3103));
    assert.equal(back.line.decision, 'restore');
    assert.equal(back.line.restore?.ok, true, JSON.stringify(back.line.restore));
    const restores = eventsOf(stack.sim, 'restore', restoreMark);
    assert.deepEqual(
      restores.map((r) => [r.model, r.filename, r.ok]),
      [[A, keyOf(convA, A), true]],
    );
    const firstPrompt = first.timings.cache_n + first.timings.prompt_n;
    assert.ok(
      back.timings.cache_n >= firstPrompt,
      `cache_n ${back.timings.cache_n} covers A's first prompt (${firstPrompt})`,
    );
    assert.deepEqual(loads(stack), [A, B, A]);
  });

  it('a model unloaded behind the proxy is not loaded again to save its slots', async () => {
    stack = await swapStack();
    const convA: Message[] = [{ role: 'user', content: words(80, 3201) }];
    await chatModel(stack, A, convA);
    // Someone else unloads A (llama-swap's TTL, its UI, another client): its slots are gone.
    const res = await fetch(`${stack.sim.url}/api/models/unload/${A}`, { method: 'POST' });
    assert.equal(res.status, 200);
    await res.text();
    const mark = stack.sim.events.length;

    const onB = await chatModel(stack, B, [{ role: 'user', content: words(80, 3202) }]);

    assert.equal(onB.line.status, 200);
    assert.deepEqual(loads(stack, mark), [B], 'only B was loaded');
    assert.deepEqual(
      eventsOf(stack.sim, 'save', mark).filter((e) => e.model === A),
      [],
      'no save was attempted on A',
    );
  });

  it("a request for B arriving while A's request is still decoding: A's conversation is saved before the swap", async () => {
    // 10 ms per generated token: A's 30-token answer keeps A busy for ~300 ms while B's request comes in.
    stack = await swapStack({ cost: decodeOnlyCost(10) });
    const convA: Message[] = [{ role: 'user', content: words(80, 3301) }];
    const convB: Message[] = [{ role: 'user', content: words(80, 3302) }];
    const markA = stack.logs.lines.length;
    const stream = await stack.openai.chat.completions.create({
      model: A,
      messages: convA,
      max_tokens: 30,
      stream: true,
    });
    const it = stream[Symbol.asyncIterator]();
    // A first chunk means A is decoding now.
    await withDeadline(it.next(), 3000, "A's first chunk");
    const mark = stack.sim.events.length;

    const onB = chatModel(stack, B, convB);
    let replyA = '';
    await withDeadline(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) replyA += r.value.choices[0]?.delta?.content ?? '';
      })(),
      5000,
      "the end of A's stream",
    );
    const lineA = await logLineAfter(stack.logs, markA, 'chat', (l) => l.model === A);
    const lineB = (await withDeadline(onB, 5000, "B's answer")).line;

    assert.equal(lineA.status, 200);
    assert.equal(lineB.status, 200);
    const after = stack.sim.events.slice(mark);
    const saveA = after.findIndex((e) => e.type === 'save' && e.model === A && e.filename === keyOf(convA, A) && e.ok);
    const loadB = after.findIndex((e) => e.type === 'load' && e.model === B);
    assert.ok(
      saveA >= 0,
      `A's conversation was saved (events: ${JSON.stringify(after.map((e) => [e.type, e.model]))})`,
    );
    assert.ok(
      loadB > saveA,
      `before B was loaded (events: ${JSON.stringify(after.map((e) => [e.type, e.model, 'ok' in e ? e.ok : '']))})`,
    );
    assert.deepEqual(loads(stack), [A, B], 'and the save loaded nothing');

    const restoreMark = stack.sim.events.length;
    const back = await chatModel(stack, A, continued(convA, replyA.trim(), 3303));
    assert.equal(back.line.decision, 'restore');
    assert.deepEqual(
      eventsOf(stack.sim, 'restore', restoreMark).map((r) => [r.filename, r.ok]),
      [[keyOf(convA, A), true]],
    );
  });
});
