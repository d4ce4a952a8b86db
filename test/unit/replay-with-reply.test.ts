/**
 * The replay with the answer's text (a rescue, see flow.replayOf) on the chat, Messages and Responses routes: the
 * text becomes a last assistant message (or input item) for llama-server to continue, unless the request already
 * ended with one (it was itself continued). On the completion routes it is appended to a text prompt.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chatAdapter } from '../../src/generation/adapters/chat.js';
import { completionAdapter } from '../../src/generation/adapters/completion.js';
import { messagesAdapter } from '../../src/generation/adapters/messages.js';
import { responsesAdapter } from '../../src/generation/adapters/responses.js';

const http = { headers: {}, query: {} };
const REPLAY = { id_slot: -1, cache_prompt: true, n_predict: 0, stream: false } as const;
const bodyOf = (call: { body: Buffer | string }) => JSON.parse(call.body.toString()) as Record<string, any>;

describe('a replay with the reply', () => {
  it('chat: the reply follows as the assistant, with the replay fields', () => {
    const request = chatAdapter.read({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 9 }, http);
    const body = bodyOf(request.replayWithReply!.call(REPLAY, 'Hello there'));
    assert.deepEqual(body.messages, [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello there' },
    ]);
    assert.equal(body.n_predict, 0);
    assert.equal(body.id_slot, -1);
    assert.equal(body.stream, false);
  });

  it('chat: none for a request that ended with the assistant (its reply continued that message)', () => {
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ];
    assert.equal(chatAdapter.read({ model: 'm', messages }, http).replayWithReply, undefined);
  });

  it('Anthropic messages: the converted chat gets the reply as the assistant', () => {
    const request = messagesAdapter.read(
      { model: 'm', max_tokens: 9, messages: [{ role: 'user', content: 'Hi' }] },
      http,
    );
    const body = bodyOf(request.replayWithReply!.call(REPLAY, 'Hello there'));
    assert.deepEqual(body.messages.at(-1), { role: 'assistant', content: 'Hello there' });
    assert.equal(body.n_predict, 0);
  });

  it('Responses: the reply follows as an assistant input item, a string input first made a user message', () => {
    const fromString = responsesAdapter.read({ model: 'm', input: 'Hi', instructions: 'Be brief' }, http);
    assert.equal(fromString.replayWithReply!.answerShape, 'responses');
    const body = bodyOf(fromString.replayWithReply!.call(REPLAY, 'Hello there'));
    assert.deepEqual(body.input, [
      { type: 'message', role: 'user', content: 'Hi' },
      { type: 'message', role: 'assistant', content: 'Hello there' },
    ]);
    assert.equal(body.instructions, 'Be brief');
    assert.equal(body.n_predict, 0);
    const ended = [
      { type: 'message', role: 'user', content: 'Hi' },
      { type: 'message', role: 'assistant', content: 'Hel' },
    ];
    assert.equal(responsesAdapter.read({ model: 'm', input: ended }, http).replayWithReply, undefined);
  });

  it('completions: the reply appended to a text prompt (alone or in a list of one), on the same path', () => {
    for (const prompt of ['Once upon', ['Once upon']]) {
      const request = completionAdapter('/completion').read({ prompt, n_predict: 9 }, http);
      assert.equal(request.replayWithReply!.answerShape, 'completion');
      const call = request.replayWithReply!.call(REPLAY, ' a time');
      assert.equal(call.path, '/completion');
      const body = bodyOf(call);
      assert.equal(body.prompt, 'Once upon a time');
      assert.equal(body.n_predict, 0);
      assert.equal(body.stream, false);
    }
  });

  it('completions: none for token ids (the reply has none), nor with echo (the answer repeats the prompt)', () => {
    const v1 = completionAdapter('/v1/completions');
    assert.equal(v1.read({ prompt: [1, 2, 3] }, http).replayWithReply, undefined);
    assert.equal(v1.read({ prompt: 'Once', echo: true }, http).replayWithReply, undefined);
  });
});
