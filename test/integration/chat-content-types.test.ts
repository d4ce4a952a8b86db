/**
 * Which content types the chat route accepts: JSON, and JSON sent as `text/plain` (llama-server parses the body
 * whatever its type, and some clients send `text/plain`). The README said so while the proxy answered 400.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventsOf } from '../support/sim-helpers.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

describe('chat content types', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  const body = { model: 'tiny', messages: [{ role: 'user', content: 'hello over text/plain' }], max_tokens: 2 };

  it('a JSON body sent as text/plain is served through the cached path (pinned to a slot)', async () => {
    const chats = eventsOf(stack.sim, 'chat').length;
    const res = await postJson(stack.url, '/v1/chat/completions', body, {
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.object, 'chat.completion');
    assert.equal(eventsOf(stack.sim, 'chat').length, chats + 1);
    const line = await stack.logs.waitFor((l) => l.msg === 'chat', 2000);
    assert.equal(typeof line.slot, 'number');
  });

  it('malformed text/plain → 400 invalid_json', async () => {
    const res = await postJson(stack.url, '/v1/chat/completions', 'not json', {
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'invalid_json');
  });

  it('another content type → 415 unsupported_media_type', async () => {
    const res = await postJson(stack.url, '/v1/chat/completions', JSON.stringify(body), {
      headers: { 'content-type': 'application/xml' },
    });
    assert.equal(res.status, 415);
    assert.equal(res.body.error.code, 'unsupported_media_type');
    assert.equal(res.body.error.type, 'invalid_request_error');
  });
});
