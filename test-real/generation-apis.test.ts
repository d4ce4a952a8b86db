/**
 * Completions, infill and Responses through the proxy in front of a real llama-server: each request is pinned (the
 * server logs "selected slot by id" for the slot the proxy chose) and a completion prompt that grows continues in its
 * slot, reusing its tokens.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { locateLlamaServer } from '../test/support/real-server.js';
import { REAL_MODEL, startRealStack } from '../test/support/real-stack.js';
import type { RealStack } from '../test/support/real-stack.js';
import { words } from '../test/support/text.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

/** The slot ids the server says it selected by id, in order. */
function selectedById(stack: RealStack): number[] {
  return [...stack.server.output().matchAll(/selected slot by id \((\d+)\)/g)].map((m) => Number(m[1]));
}

async function lineAfter(stack: RealStack, mark: number): Promise<Record<string, any>> {
  return stack.logs.waitFor(
    (l) => l.msg === 'chat' && stack.logs.lines.indexOf(l) >= mark,
    10_000,
    "the proxy's log line",
  );
}

describe('completions, infill and responses pinned on a real llama-server', { skip }, () => {
  let stack: RealStack;
  beforeEach(async () => {
    if ('skip' in where) return;
    stack = await startRealStack(where, { server: { slots: 2, args: ['--cache-ram', '0'] } });
  });
  afterEach(() => stack?.close());

  it('each API is pinned to the slot the proxy chose; a growing completion prompt reuses its slot', async () => {
    const prompt = words(700, 501);
    let mark = stack.logs.lines.length;
    const first = await stack.openai.completions.create({ model: REAL_MODEL, prompt, max_tokens: 4, temperature: 0 });
    const l1 = await lineAfter(stack, mark);
    assert.equal(l1.api, 'completion');
    assert.equal(selectedById(stack).at(-1), l1.slot);

    mark = stack.logs.lines.length;
    const stream = await stack.openai.completions.create({
      model: REAL_MODEL,
      prompt: `${prompt}${first.choices[0]!.text} ${words(20, 502)}`,
      max_tokens: 4,
      temperature: 0,
      stream: true,
    });
    for await (const _ of stream) {
      /* drain */
    }
    const l2 = await lineAfter(stack, mark);
    assert.equal(l2.decision, 'resident');
    assert.equal(l2.slot, l1.slot);
    assert.ok(l2.cache_n >= 700, `reused ${l2.cache_n} tokens`);

    mark = stack.logs.lines.length;
    const before = selectedById(stack).length;
    await stack.openai.responses.create({
      model: REAL_MODEL,
      instructions: words(40, 503),
      input: words(700, 504),
      max_output_tokens: 4,
      temperature: 0,
      stream: false,
    });
    const l3 = await lineAfter(stack, mark);
    assert.equal(l3.api, 'responses');
    assert.equal(selectedById(stack).length, before + 1);
    assert.equal(selectedById(stack).at(-1), l3.slot);
    assert.ok(l3.prompt_n > 700, 'the usage of a non-streamed response stands in for timings');

    mark = stack.logs.lines.length;
    const res = await fetch(`${stack.url}/infill`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        input_prefix: words(300, 505),
        input_suffix: words(50, 506),
        input_extra: [{ filename: 'a.py', text: words(300, 507) }],
        n_predict: 3,
        temperature: 0,
      }),
    });
    assert.equal(res.status, 200);
    const infill = (await res.json()) as { id_slot: number };
    const l4 = await lineAfter(stack, mark);
    assert.equal(l4.api, 'infill');
    assert.equal(infill.id_slot, l4.slot);
    assert.equal(selectedById(stack).at(-1), l4.slot);

    // llama-server's own completion route, with token ids (the prompt a script sends after tokenizing).
    mark = stack.logs.lines.length;
    const tokens = Array.from({ length: 600 }, (_, i) => 100 + (i % 200));
    const native = await fetch(`${stack.url}/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: tokens, n_predict: 3, temperature: 0 }),
    });
    assert.equal(native.status, 200);
    const answer = (await native.json()) as { id_slot: number };
    const l5 = await lineAfter(stack, mark);
    assert.equal(l5.api, 'completion');
    assert.equal(answer.id_slot, l5.slot);
    assert.equal(selectedById(stack).at(-1), l5.slot);
  });

  it('a Responses assistant item without its type: refused by the server alone, typed by the proxy', async () => {
    const user = words(700, 511);
    const first = await stack.openai.responses.create({
      model: REAL_MODEL,
      input: user,
      max_output_tokens: 4,
      temperature: 0,
    });
    const body: OpenAI.Responses.ResponseCreateParamsNonStreaming = {
      model: REAL_MODEL,
      input: [
        { role: 'user', content: user },
        { role: 'assistant', content: first.output_text },
        { role: 'user', content: words(20, 512) },
      ],
      max_output_tokens: 4,
      temperature: 0,
    };
    const direct = await fetch(`${stack.server.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(direct.status, 400);
    assert.match(await direct.text(), /Cannot determine type of 'item'/);

    const mark = stack.logs.lines.length;
    const next = await stack.openai.responses.create(body);
    assert.ok(next.output_text.length > 0);
    const line = await lineAfter(stack, mark);
    assert.equal(line.decision, 'resident');
    assert.ok(line.cache_n >= 700, `reused ${line.cache_n} tokens`);
  });
});
