/**
 * Failures on the backend side: unreachable → 502 at once in the OpenAI shape; an error status of the backend is
 * passed on with its own body; a failed cache operation (save, restore) never fails the user's request.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { nthChatLine } from '../support/log-lines.js';
import { closedPortUrl } from '../support/net.js';
import { eventsOf } from '../support/sim-helpers.js';
import { postJson, startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';

describe('backend unreachable', () => {
  let stack: Stack;
  before(async () => {
    // REQUEST_TIMEOUT stays at its test value (20 s): the 502 must not wait for any timeout.
    stack = await startStack({ env: { LLAMA_URL: await closedPortUrl() } });
  });
  after(() => closeStack(stack));

  it('a chat gets 502 in the OpenAI shape, well under a second', async () => {
    const started = performance.now();
    const res = await postJson(
      stack.url,
      '/v1/chat/completions',
      { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] },
      {
        signal: AbortSignal.timeout(5000),
      },
    );
    const took = performance.now() - started;
    assert.equal(res.status, 502);
    assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(res.body.error.type, 'server_error');
    assert.equal(res.body.error.code, 'backend_unreachable');
    assert.ok(took < 1000, `took ${Math.round(took)} ms`);
  });

  it('a streamed chat gets the same 502 before any stream starts (OpenAI SDK)', async () => {
    await assert.rejects(
      stack.openai.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.equal(err.status, 502);
        assert.equal(err.code, 'backend_unreachable');
        return true;
      },
    );
    assert.equal(stack.proxy.state.pool.all().filter((s) => s.busy).length, 0, 'the slot was released');
  });
});

describe('backend error statuses are passed on', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ sim: { models: [{ id: 'tiny', nSlots: 2, nCtx: 64 }] } });
  });
  after(() => closeStack(stack));

  it("the backend's 400 for a prompt over the context, body unchanged", async () => {
    const res = await postJson(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: words(120, 3) }],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.type, 'exceed_context_size_error');
    assert.equal(res.body.error.n_ctx, 64, "llama-server's own fields survive");
    assert.match(res.body.error.message, /exceeds the available context size/);
  });

  it('the same 400 for a streamed request (no stream is started)', async () => {
    const res = await postJson(stack.url, '/v1/chat/completions', {
      model: 'tiny',
      messages: [{ role: 'user', content: words(120, 4) }],
      stream: true,
    });
    assert.equal(res.status, 400);
    assert.match(String(res.headers.get('content-type')), /application\/json/);
    assert.equal(res.body.error.type, 'exceed_context_size_error');
  });

  it('an injected chat fault: status 500 and its message reach the client (OpenAI SDK)', async () => {
    stack.sim.injectFault({ action: 'chat', status: 500, message: 'the GPU caught fire' });
    await assert.rejects(
      stack.openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.equal(err.status, 500);
        assert.match(err.message, /the GPU caught fire/);
        return true;
      },
    );
    const line = await stack.logs.waitFor((l) => l.msg === 'chat' && l.status === 500);
    assert.equal(typeof line.slot, 'number');
  });
});

describe('a failed cache operation never fails the request', () => {
  let stack: Stack;
  beforeEach(async () => {
    stack = await startStack({ sim: { models: [{ id: 'tiny', nSlots: 1 }] }, env: { N_SLOTS: '1' } });
  });
  afterEach(() => closeStack(stack));

  const big = (seed: number) =>
    stack.openai.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: words(60, seed) }],
      max_tokens: 2,
    });

  it('a failed save after the reply: 200', async () => {
    stack.sim.injectFault({ action: 'save', status: 500 });
    const res = await big(1);
    assert.equal(res.object, 'chat.completion');
    const line = await stack.logs.waitFor((l) => l.msg === 'chat');
    assert.equal(line.status, 200);
    assert.equal((line.save as { ok: boolean }).ok, false);
  });

  it('a failed restore before the request: 200', async () => {
    await big(1); // saved
    await big(2); // takes the only slot: conversation 1 now lives only on disk
    stack.sim.injectFault({ action: 'restore', status: 500 });
    const res = await big(1);
    assert.equal(res.object, 'chat.completion');
    const line = await nthChatLine(stack.logs, 3);
    assert.equal(line.decision, 'restore');
    assert.equal((line.restore as { ok: boolean }).ok, false);
    assert.equal(line.status, 200);
    assert.equal(eventsOf(stack.sim, 'restore').at(-1)?.status, 500);
  });
});
