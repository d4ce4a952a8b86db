/**
 * Tool definitions are part of the prompt llama-server renders (a tools-aware template puts them in the system part),
 * so they are part of the proxy's key and blocks: the same messages with other tools share almost no KV and must
 * not be taken for the same conversation; the same tools keep a conversation resident, on chat and on Responses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { logLineAfter, MODEL } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { words } from '../support/text.js';

const fn = (name: string, seed: number) => ({
  name,
  description: words(60, seed),
  parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
});
const chatTools = (...defs: ReturnType<typeof fn>[]) => defs.map((f) => ({ type: 'function' as const, function: f }));

describe('tool definitions in the key', { timeout: 60_000 }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  async function chatWith(
    messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>,
    tools: ReturnType<typeof chatTools>,
  ) {
    const mark = stack.logs.lines.length;
    const res = await stack.openai.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 4 });
    const line = await logLineAfter(stack.logs, mark, 'chat');
    return { content: res.choices[0]?.message.content ?? '', line };
  }

  it('the same messages with other tools are another prompt; with the same tools the conversation continues in its slot', async () => {
    const readTools = chatTools(fn('read_file', 51), fn('list_dir', 52));
    const otherTools = chatTools(fn('run_shell', 53), fn('web_fetch', 54));
    const messages = [
      { role: 'system' as const, content: words(60, 55) },
      { role: 'user' as const, content: words(60, 56) },
    ];
    const first = await chatWith(messages, readTools);
    const other = await chatWith(messages, otherTools);
    assert.notEqual(other.line.key, first.line.key, 'other tools, other key');
    assert.notEqual(other.line.decision, 'resident', JSON.stringify(other.line));
    const next = await chatWith(
      [...messages, { role: 'assistant', content: first.content }, { role: 'user', content: words(10, 57) }],
      readTools,
    );
    assert.equal(next.line.decision, 'resident', JSON.stringify(next.line));
    assert.equal(next.line.slot, first.line.slot);
  });

  it('a conversation with tools moves from chat to /v1/responses with the same function tools and stays resident', async () => {
    const defs = [fn('read_file', 61), fn('apply_patch', 62)];
    const system = words(60, 63);
    const user = words(60, 64);
    const first = await chatWith(
      [
        { role: 'system', content: system },
        { role: 'user', content: user },
      ],
      chatTools(...defs),
    );
    const mark = stack.logs.lines.length;
    await stack.openai.responses.create({
      model: MODEL,
      instructions: system,
      tools: defs.map((f) => ({ type: 'function' as const, strict: false, ...f })),
      input: [
        { role: 'user', content: user },
        { role: 'assistant', content: first.content },
        { role: 'user', content: words(8, 65) },
      ],
      max_output_tokens: 4,
    });
    const line = await logLineAfter(stack.logs, mark, 'chat');
    assert.equal(line.decision, 'resident', JSON.stringify(line));
    assert.equal(line.slot, first.line.slot);
  });
});
