/**
 * What the proxy reads from a backend's answer besides relaying it: `timings`, and, when asked, the text a chat
 * completion answered (a rescue replays the conversation with it, see flow.replayOf): only when that text is all the
 * answer held.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readAnswer, SseTap } from '../../src/generation/sse-tap.js';

const frame = (event: unknown) => `data: ${JSON.stringify(event)}\n\n`;
const delta = (d: Record<string, unknown>) => frame({ choices: [{ index: 0, delta: d }] });
const TIMINGS = { cache_n: 10, prompt_n: 90, predicted_n: 3 };

/** A stream cut into chunks at awkward places, as sockets deliver it. */
function tapped(text: string, reply: boolean): SseTap {
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
    const tap = tapped(stream, true);
    assert.equal(tap.reply, 'Hello, wörld');
    assert.deepEqual(tap.timings, TIMINGS);
    assert.equal(tap.done, true);
  });

  it('reads no text unless asked', () => {
    assert.equal(tapped(stream, false).reply, undefined);
  });

  it('none when the answer called a tool or reasoned: a replay could not continue it as plain text', () => {
    const toolCall =
      delta({ content: 'Let me look.' }) + delta({ tool_calls: [{ index: 0, function: { name: 'ls' } }] });
    assert.equal(tapped(toolCall, true).reply, undefined);
    const reasoning = delta({ reasoning_content: 'Thinking' }) + delta({ content: 'Done.' });
    assert.equal(tapped(reasoning, true).reply, undefined);
  });

  it('none when the answer had no text', () => {
    assert.equal(tapped(delta({ role: 'assistant', content: null }) + 'data: [DONE]\n\n', true).reply, undefined);
  });
});

describe('readAnswer: a whole chat completion', () => {
  const answer = (message: Record<string, unknown>) =>
    Buffer.from(JSON.stringify({ choices: [{ index: 0, message }], timings: TIMINGS }));

  it("its message's content and its timings", () => {
    assert.deepEqual(readAnswer(answer({ role: 'assistant', content: 'Hi there' }), true), {
      timings: TIMINGS,
      reply: 'Hi there',
    });
    assert.deepEqual(readAnswer(answer({ role: 'assistant', content: 'Hi there' })), { timings: TIMINGS });
  });

  it('no text for a tool call, nor for what is not JSON', () => {
    const call = answer({ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function' }] });
    assert.equal(readAnswer(call, true).reply, undefined);
    assert.deepEqual(readAnswer(Buffer.from('not json'), true), {});
    assert.deepEqual(readAnswer(Buffer.from('null'), true), {});
    assert.deepEqual(readAnswer(Buffer.from('{"choices":null}'), true), {});
  });
});
