import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';

describe('chat completions through the proxy (OpenAI SDK)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  it('non-streaming: the backend answer reaches the client unchanged, timings included, pinned to a slot', async () => {
    const res = await stack.openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: words(60, 1) }],
      max_tokens: 4,
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices.length, 1);
    const timings = (res as unknown as { timings: { cache_n: number; prompt_n: number } }).timings;
    assert.equal(typeof timings.prompt_n, 'number');
    assert.ok(timings.prompt_n > 60);
    const chat = stack.sim.events.filter((e) => e.type === 'chat').at(-1) as { slot: number } | undefined;
    const line = await stack.logs.waitFor((l) => l.msg === 'chat');
    assert.equal(line.slot, chat?.slot, 'the slot the proxy logged is the slot the backend used');
  });

  it('streaming: SSE chunks arrive and end with [DONE]; timings on the final chunk', async () => {
    const stream = await stack.openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: words(60, 2) }],
      max_tokens: 5,
      stream: true,
    });
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length >= 6, `got ${chunks.length} chunks`);
    const last = chunks.at(-1) as { timings?: { prompt_n: number }; choices: Array<{ finish_reason: string | null }> };
    assert.equal(last.choices[0]?.finish_reason, 'length');
    assert.ok(last.timings && last.timings.prompt_n > 0);
  });
});
