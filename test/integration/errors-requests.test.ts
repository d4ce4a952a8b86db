/** Bad requests are refused by the proxy itself with a 400 in the OpenAI error shape, and never reach a slot. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventsOf } from '../support/sim-helpers.js';
import { postJson, startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';

/** `{"error":{"message","type","param","code"}}` and nothing else. */
function assertOpenAiError(body: any, type: string): void {
  assert.equal(typeof body, 'object');
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(body.error.type, type);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
}

describe('invalid chat requests', () => {
  let stack: Stack;
  /** Simulator events before the tests (the proxy's start-up probe sends two one-token chats). */
  let startup = 0;
  before(async () => {
    stack = await startStack();
    startup = stack.sim.events.length;
  });
  after(() => closeStack(stack));

  it('malformed JSON → 400 invalid_json', async () => {
    const res = await postJson(stack.url, '/v1/chat/completions', '{"model": "tiny", "messages": [');
    assert.equal(res.status, 400);
    assertOpenAiError(res.body, 'invalid_request_error');
    assert.equal(res.body.error.code, 'invalid_json');
    assert.equal(eventsOf(stack.sim, 'chat', startup).length, 0);
  });

  it('a body without messages → 400 naming the field', async () => {
    const res = await postJson(stack.url, '/v1/chat/completions', { model: 'tiny', prompt: 'hello' });
    assert.equal(res.status, 400);
    assertOpenAiError(res.body, 'invalid_request_error');
    assert.equal(res.body.error.param, 'messages');
    assert.equal(eventsOf(stack.sim, 'chat', startup).length, 0);
  });

  it('messages that are not an array → 400 naming the field (also on /chat/completions)', async () => {
    const res = await postJson(stack.url, '/chat/completions', { model: 'tiny', messages: 'oops' });
    assert.equal(res.status, 400);
    assertOpenAiError(res.body, 'invalid_request_error');
    assert.equal(res.body.error.param, 'messages');
    assert.equal(eventsOf(stack.sim, 'chat', startup).length, 0);
    assert.equal(stack.proxy.state.pool.all().filter((s) => s.busy).length, 0);
  });
});

describe('hostile chat bodies', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  it('JSON nested 100,000 deep → 400 invalid_json (the prompt analysis used to overflow its stack: 500)', async () => {
    const chats = eventsOf(stack.sim, 'chat').length;
    const depth = 100_000;
    const body = `{"model":"tiny","messages":[{"role":"user","content":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}]}`;
    const res = await postJson(stack.url, '/v1/chat/completions', body);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assertOpenAiError(res.body, 'invalid_request_error');
    assert.equal(res.body.error.code, 'invalid_json');
    assert.equal(eventsOf(stack.sim, 'chat').length, chats);
  });

  it('the next request is served normally', async () => {
    const res = await stack.openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 2,
    });
    assert.equal(res.object, 'chat.completion');
  });
});

describe('an unexpected failure inside the proxy', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  it('→ 500 internal_error without details for the client; the log line carries the cause and its stack', async () => {
    // Stands in for a bug: the prompt analysis throws something no code path expects.
    const analyzer = stack.proxy.state.analyzer;
    const analyze = analyzer.analyze;
    analyzer.analyze = () => {
      throw new TypeError('secret detail of an unforeseen bug');
    };
    try {
      const res = await postJson(stack.url, '/v1/chat/completions', {
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
      });
      assert.equal(res.status, 500);
      assertOpenAiError(res.body, 'server_error');
      assert.equal(res.body.error.code, 'internal_error');
      assert.doesNotMatch(JSON.stringify(res.body), /secret detail|at /);
    } finally {
      analyzer.analyze = analyze;
    }
    const line = await stack.logs.waitFor((l) => l.msg === 'internal proxy error', 2000);
    assert.equal(line.level, 'error');
    assert.equal(line.status, 500);
    const err = line.err as { type: string; message: string; stack: string };
    assert.equal(err.type, 'TypeError');
    assert.equal(err.message, 'secret detail of an unforeseen bug');
    assert.match(err.stack, /\n\s+at /);
  });
});
