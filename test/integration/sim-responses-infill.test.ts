/**
 * The simulator's `/v1/responses` and `/infill` answer like llama-server 3f545bec (shapes captured from the binary
 * with the tiny model): both honour `id_slot`; a non-streamed response has `usage` but no `timings`, a stream's
 * `response.completed` event has both; infill's missing fields are 500s with nlohmann's text, a bad
 * `input_extra` the server's own 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { postJson } from '../../src/sim/sim-client.js';

describe('simulator: /v1/responses and /infill', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'tiny-chat', nSlots: 2 }],
      cost: { timeScale: 0 },
    });
  });
  after(() => sim.close());

  const lastChatSlot = () => (sim.events.filter((e) => e.type === 'chat').at(-1) as { slot: number }).slot;

  it('responses without stream: the Responses object, usage with cached tokens, no timings; id_slot honoured', async () => {
    const res = await postJson(sim.url, '/v1/responses', {
      input: 'hello there friend',
      instructions: 'be nice',
      max_output_tokens: 4,
      id_slot: 1,
    });
    assert.equal(res.status, 200);
    const body = res.json<Record<string, any>>();
    assert.deepEqual(Object.keys(body), [
      'completed_at',
      'created_at',
      'id',
      'model',
      'object',
      'output',
      'status',
      'usage',
    ]);
    assert.match(body.id, /^resp_[A-Za-z0-9]{32}$/);
    assert.equal(body.output[0].content[0].type, 'output_text');
    assert.deepEqual(Object.keys(body.usage), [
      'input_tokens',
      'output_tokens',
      'total_tokens',
      'input_tokens_details',
    ]);
    assert.equal(body.usage.output_tokens, 4);
    assert.equal(lastChatSlot(), 1);
  });

  it('responses: an assistant input item without its type is refused, as the real server does; typed, it passes', async () => {
    const input = (assistant: Record<string, unknown>) => [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello', ...assistant },
      { role: 'user', content: 'more' },
    ];
    const untyped = await postJson(sim.url, '/v1/responses', { input: input({}), max_output_tokens: 2 });
    assert.equal(untyped.status, 400);
    assert.equal(
      untyped.body,
      JSON.stringify({
        error: { code: 400, message: "Cannot determine type of 'item'", type: 'invalid_request_error' },
      }),
    );
    const typed = await postJson(sim.url, '/v1/responses', { input: input({ type: 'message' }), max_output_tokens: 2 });
    assert.equal(typed.status, 200);
  });

  it('responses stream: the event sequence, timings beside the completed response', async () => {
    const res = await fetch(`${sim.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        input: [{ role: 'user', content: [{ type: 'input_text', text: 'hello there' }] }],
        max_output_tokens: 3,
        stream: true,
        id_slot: 0,
      }),
    });
    const text = await res.text();
    const events = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(events, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const completed = JSON.parse(text.trim().split('\n').at(-1)!.slice('data: '.length)) as Record<string, any>;
    assert.equal(typeof completed.timings.prompt_n, 'number');
    assert.equal(completed.response.usage.output_tokens, 3);
    assert.equal(lastChatSlot(), 0);
    const missing = await postJson(sim.url, '/v1/responses', { max_output_tokens: 2 });
    assert.deepEqual([missing.status, missing.json().error.message], [400, "'input' is required"]);
  });

  it('infill: native completion shape with the FIM prompt, id_slot honoured, the real errors', async () => {
    const res = await postJson(sim.url, '/infill', {
      input_prefix: 'def f(x):\n    return ',
      input_suffix: '\n\nprint(f(2))',
      input_extra: [{ filename: 'a.py', text: 'import os\n' }],
      prompt: 'x',
      n_predict: 3,
      id_slot: 1,
    });
    assert.equal(res.status, 200);
    const body = res.json<Record<string, any>>();
    assert.equal(body.id_slot, 1);
    assert.equal(
      body.prompt,
      '\n\n--- snippet ---\n\nimport os\n<s><|fim_prefix|>def f(x):\n    return x<|fim_suffix|>\n\nprint(f(2))<|fim_middle|>',
    );
    assert.equal(typeof body.timings.cache_n, 'number');
    const noSuffix = await postJson(sim.url, '/infill', { input_prefix: 'x' });
    assert.deepEqual(
      [noSuffix.status, noSuffix.json().error.message],
      [500, "[json.exception.out_of_range.403] key 'input_suffix' not found"],
    );
    const badExtra = await postJson(sim.url, '/infill', { input_prefix: 'x', input_suffix: '', input_extra: 'bad' });
    assert.deepEqual(
      [badExtra.status, badExtra.json().error.message],
      [400, '"input_extra" must be an array of {"filename": string, "text": string}'],
    );
  });
});
