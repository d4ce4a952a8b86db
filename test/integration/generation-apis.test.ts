/**
 * Completions, infill and Responses are managed like chat: pinned with `id_slot` (the simulator honours it as
 * llama-server does), their prompts keyed and cached under the same policy, bad input refused with a 400 naming the
 * field. Driven with the official `openai` client where it has the API (completions, responses; streaming too).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { chat, chatEvents, logLineAfter, MODEL, slotFileEvents } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { words } from '../support/text.js';

async function postJson(url: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** The simulator ran the request on the slot the proxy logged: it was pinned. */
function assertPinned(stack: Stack, simMark: number, line: Record<string, any>): void {
  const ran = chatEvents(stack.sim, simMark);
  assert.equal(ran.length, 1, 'one task ran on the backend');
  assert.equal(ran[0]!.slot, line.slot, 'the backend ran it on the slot the proxy chose (id_slot)');
}

describe('completions, infill and responses through the generation flow', { timeout: 60_000 }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  it('/v1/completions (openai client): pinned, saved per policy, and a longer prompt continues in its slot', async () => {
    const prompt = words(80, 11);
    let mark = stack.logs.lines.length;
    let simMark = stack.sim.events.length;
    const first = await stack.openai.completions.create({ model: MODEL, prompt, max_tokens: 4 });
    assert.equal(first.object, 'text_completion');
    const line1 = await logLineAfter(stack.logs, mark, 'chat');
    assert.equal(line1.api, 'completion');
    assert.equal(line1.decision, 'cold');
    assertPinned(stack, simMark, line1);
    assert.equal(
      slotFileEvents(stack.sim, 'save', simMark).length,
      1,
      'SAVE_POLICY=always: a big prompt is saved after its answer',
    );

    mark = stack.logs.lines.length;
    simMark = stack.sim.events.length;
    const stream = await stack.openai.completions.create({
      model: MODEL,
      prompt: `${prompt}${first.choices[0]!.text} ${words(10, 12)}`,
      max_tokens: 4,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.ok(text.length > 0);
    const line2 = await logLineAfter(stack.logs, mark, 'chat');
    assert.equal(line2.decision, 'resident');
    assert.equal(line2.slot, line1.slot);
    assertPinned(stack, simMark, line2);
    assert.ok(line2.cache_n >= 80, `the stream's timings were read: cache_n ${line2.cache_n}`);
  });

  it('/completion with token ids is pinned; several prompts in one request are refused (400, param prompt)', async () => {
    const mark = stack.logs.lines.length;
    const simMark = stack.sim.events.length;
    const res = await postJson(stack.url, '/completion', { prompt: [5, 6, 7, 8], n_predict: 2 });
    assert.equal(res.status, 200);
    assert.equal(res.body.stop, true);
    const line = await logLineAfter(stack.logs, mark, 'chat');
    assertPinned(stack, simMark, line);

    await assert.rejects(
      stack.openai.completions.create({ model: MODEL, prompt: ['one prompt', 'another prompt'], max_tokens: 2 }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && (err.error as { param?: string }).param === 'prompt',
    );
    const missing = await postJson(stack.url, '/v1/completions', { model: MODEL });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.param, 'prompt');
  });

  it('/infill: every field is in the key, the request is pinned, and a missing field is a 400 naming it', async () => {
    const body = {
      input_extra: [{ filename: 'util.py', text: words(30, 21) }],
      input_prefix: words(30, 22),
      input_suffix: words(10, 23),
      n_predict: 3,
    };
    let mark = stack.logs.lines.length;
    let simMark = stack.sim.events.length;
    const res = await postJson(stack.url, '/infill', body);
    assert.equal(res.status, 200);
    const line1 = await logLineAfter(stack.logs, mark, 'chat');
    assert.equal(line1.api, 'infill');
    assert.equal(line1.big, true, 'extra, prefix and suffix words all count');
    assertPinned(stack, simMark, line1);

    mark = stack.logs.lines.length;
    simMark = stack.sim.events.length;
    await postJson(stack.url, '/infill', { ...body, input_extra: [{ filename: 'util.py', text: words(30, 24) }] });
    const line2 = await logLineAfter(stack.logs, mark, 'chat');
    assert.notEqual(line2.key, line1.key, 'another extra chunk is another prompt');
    assertPinned(stack, simMark, line2);

    const missing = await postJson(stack.url, '/infill', { input_prefix: 'def f(' });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.param, 'input_suffix');
    const badChunk = await postJson(stack.url, '/infill', { ...body, input_extra: [{ filename: 'a' }] });
    assert.equal(badChunk.status, 400);
    assert.equal(badChunk.body.error.param, 'input_extra[0].text');
  });

  it('/v1/responses (openai client, stream and not): pinned, the session shown, its next turn resident', async () => {
    const instructions = words(40, 31);
    const user = words(40, 32);
    let mark = stack.logs.lines.length;
    let simMark = stack.sim.events.length;
    const first = await stack.openai.responses.create({
      model: MODEL,
      instructions,
      input: user,
      max_output_tokens: 4,
      prompt_cache_key: 'sess-1',
    });
    assert.ok(first.output_text.length > 0);
    const line1 = await logLineAfter(stack.logs, mark, 'chat');
    assert.equal(line1.api, 'responses');
    assert.equal(line1.session, 'sess-1');
    assert.equal(typeof line1.prompt_n, 'number', 'usage stands in for the timings a non-streamed answer lacks');
    assertPinned(stack, simMark, line1);

    mark = stack.logs.lines.length;
    simMark = stack.sim.events.length;
    const stream = await stack.openai.responses.create({
      model: MODEL,
      instructions,
      input: [
        { role: 'user', content: [{ type: 'input_text', text: user }] },
        // Without its `type`, as the Responses API allows: llama-server (and the simulator) refuse that with 400
        // "Cannot determine type of 'item'", so the proxy adds it.
        { role: 'assistant', content: first.output_text },
        { role: 'user', content: words(8, 33) },
      ],
      max_output_tokens: 4,
      prompt_cache_key: 'sess-1',
      stream: true,
    });
    let completed = false;
    for await (const event of stream) if (event.type === 'response.completed') completed = true;
    assert.ok(completed);
    const line2 = await logLineAfter(stack.logs, mark, 'chat');
    assert.equal(line2.decision, 'resident');
    assert.equal(line2.slot, line1.slot);
    assertPinned(stack, simMark, line2);
    assert.ok(line2.cache_n > 40, `reused ${line2.cache_n} tokens`);

    await assert.rejects(
      stack.openai.responses.create({ model: MODEL, input: 5 as unknown as string }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && (err.error as { param?: string }).param === 'input',
    );
  });

  it('a conversation started on chat completions continues on /v1/responses in the same slot (same canonical prompt)', async () => {
    const system = words(40, 41);
    const user = words(40, 42);
    const turn1 = await chat(
      stack,
      [
        { role: 'system', content: system },
        { role: 'user', content: user },
      ],
      { maxTokens: 4 },
    );
    const mark = stack.logs.lines.length;
    await stack.openai.responses.create({
      model: MODEL,
      instructions: system,
      input: [
        { role: 'user', content: user },
        { role: 'assistant', content: turn1.content },
        { role: 'user', content: words(8, 43) },
      ],
      max_output_tokens: 4,
    });
    const line = await logLineAfter(stack.logs, mark, 'chat');
    assert.equal(line.decision, 'resident');
    assert.equal(line.slot, turn1.line.slot);
  });

  it('the log line shows the session a chat names in x-session-id (opencode) or x-claude-code-session-id', async () => {
    for (const [header, id] of [
      ['x-session-id', 'ses_open'],
      ['x-claude-code-session-id', 'claude-1'],
    ] as const) {
      const mark = stack.logs.lines.length;
      await stack.openai.chat.completions.create(
        { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 },
        { headers: { [header]: id } },
      );
      const line = await logLineAfter(stack.logs, mark, 'chat');
      assert.equal(line.session, id);
    }
  });
});
