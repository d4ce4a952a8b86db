/**
 * What the proxy reads from a backend's answer besides relaying it: `timings`, and, when asked, the text a chat
 * completion answered (a rescue replays the conversation with it, see flow.replayOf): only when that text is all the
 * answer held.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnswerShape } from '../../src/generation/answer-text.js';
import { readAnswer, SseTap } from '../../src/generation/sse-tap.js';

const frame = (event: unknown) => `data: ${JSON.stringify(event)}\n\n`;
const delta = (d: Record<string, unknown>) => frame({ choices: [{ index: 0, delta: d }] });
const TIMINGS = { cache_n: 10, prompt_n: 90, predicted_n: 3 };

/** A stream cut into chunks at awkward places, as sockets deliver it. */
function tapped(text: string, reply: AnswerShape | undefined): SseTap {
  const tap = new SseTap({ reply });
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += 7) tap.push(bytes.subarray(at, at + 7));
  return tap;
}

describe('SseTap: the text a chat completion stream answered', () => {
  const stream =
    delta({ role: 'assistant', content: null }) +
    delta({ content: 'Hello' }) +
    delta({ content: ', wörld' }) +
    frame({ choices: [{ index: 0, delta: {}, finish_reason: 'length' }], timings: TIMINGS }) +
    'data: [DONE]\n\n';

  it('joins the content deltas, and still reads the timings', () => {
    const tap = tapped(stream, 'chat');
    assert.equal(tap.reply, 'Hello, wörld');
    assert.deepEqual(tap.timings, TIMINGS);
    assert.equal(tap.done, true);
  });

  it('reads no text unless asked', () => {
    assert.equal(tapped(stream, undefined).reply, undefined);
  });

  it('none when the answer called a tool or reasoned: a replay could not continue it as plain text', () => {
    const toolCall =
      delta({ content: 'Let me look.' }) + delta({ tool_calls: [{ index: 0, function: { name: 'ls' } }] });
    assert.equal(tapped(toolCall, 'chat').reply, undefined);
    const reasoning = delta({ reasoning_content: 'Thinking' }) + delta({ content: 'Done.' });
    assert.equal(tapped(reasoning, 'chat').reply, undefined);
  });

  it('none when the answer had no text', () => {
    assert.equal(tapped(delta({ role: 'assistant', content: null }) + 'data: [DONE]\n\n', 'chat').reply, undefined);
  });
});

describe('readAnswer: a whole chat completion', () => {
  const answer = (message: Record<string, unknown>) =>
    Buffer.from(JSON.stringify({ choices: [{ index: 0, message }], timings: TIMINGS }));

  it("its message's content and its timings", () => {
    assert.deepEqual(readAnswer(answer({ role: 'assistant', content: 'Hi there' }), 'chat'), {
      timings: TIMINGS,
      reply: 'Hi there',
    });
    assert.deepEqual(readAnswer(answer({ role: 'assistant', content: 'Hi there' })), { timings: TIMINGS });
  });

  it('no text for a tool call, nor for what is not JSON', () => {
    const call = answer({ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function' }] });
    assert.equal(readAnswer(call, 'chat').reply, undefined);
    assert.deepEqual(readAnswer(Buffer.from('not json'), 'chat'), {});
    assert.deepEqual(readAnswer(Buffer.from('null'), 'chat'), {});
    assert.deepEqual(readAnswer(Buffer.from('{"choices":null}'), 'chat'), {});
  });
});

describe('the text a response answered (/v1/responses)', () => {
  const message = (text: string) => ({
    type: 'message',
    role: 'assistant',
    content: [{ type: 'output_text', annotations: [], text }],
  });
  const usage = { input_tokens: 100, output_tokens: 3, input_tokens_details: { cached_tokens: 10 } };

  it('a stream: from its final response.completed event, and the usage still read', () => {
    const stream =
      frame({ type: 'response.output_text.delta', item_id: 'm1', delta: 'Hel' }) +
      frame({ type: 'response.output_text.delta', item_id: 'm1', delta: 'lo' }) +
      frame({ type: 'response.completed', response: { output: [message('Hello')], usage } });
    const tap = tapped(stream, 'responses');
    assert.equal(tap.reply, 'Hello');
    assert.deepEqual(tap.timings, { cache_n: 10, prompt_n: 90, predicted_n: 3 });
  });

  it('a whole answer: its output messages; none when it called a function', () => {
    const whole = (output: unknown[]) => Buffer.from(JSON.stringify({ object: 'response', output, usage }));
    assert.equal(readAnswer(whole([message('Hi')]), 'responses').reply, 'Hi');
    const call = { type: 'function_call', name: 'ls', arguments: '{}', call_id: 'c1' };
    assert.equal(readAnswer(whole([message('Let me look.'), call]), 'responses').reply, undefined);
  });
});

describe('the text a completion answered (/completion, /v1/completions)', () => {
  it("llama-server's own stream: its content pieces (the last event's content is empty)", () => {
    const stream =
      frame({ index: 0, content: 'Once', stop: false }) +
      frame({ index: 0, content: ' upon', stop: false }) +
      frame({ index: 0, content: '', stop: true, timings: TIMINGS });
    const tap = tapped(stream, 'completion');
    assert.equal(tap.reply, 'Once upon');
    assert.deepEqual(tap.timings, TIMINGS);
  });

  it("the OpenAI stream: each choice's text", () => {
    const text = (t: string) => frame({ object: 'text_completion', choices: [{ index: 0, text: t }] });
    const stream = text('Once') + text(' upon') + text('') + 'data: [DONE]\n\n';
    assert.equal(tapped(stream, 'completion').reply, 'Once upon');
  });

  it('whole answers of both shapes', () => {
    const native = Buffer.from(JSON.stringify({ content: 'Once upon', stop: true, timings: TIMINGS }));
    assert.deepEqual(readAnswer(native, 'completion'), { timings: TIMINGS, reply: 'Once upon' });
    const openai = Buffer.from(JSON.stringify({ object: 'text_completion', choices: [{ index: 0, text: 'A time' }] }));
    assert.equal(readAnswer(openai, 'completion').reply, 'A time');
    assert.equal(readAnswer(Buffer.from('{"content":null}'), 'completion').reply, undefined);
  });
});
