/**
 * Issue 9.1: one chat with 20,001 short messages used to overflow the prompt analyser's stack while pruning its
 * memo, and every later chat then failed with 500 until a restart while /health said ok.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postJson, startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';

const ordinary = (n: number) => ({
  model: 'tiny',
  max_tokens: 4,
  messages: [{ role: 'user', content: `ordinary request ${n}` }],
});

describe('a chat with more messages than the analyser memo holds', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ sim: { models: [{ id: 'tiny', nSlots: 2, nCtx: 400_000 }] } });
  });
  after(() => closeStack(stack));

  it('is answered, and every later request still is', async () => {
    const messages = Array.from({ length: 20_001 }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: `m ${i}`,
    }));
    const huge = await stack.openai.chat.completions.create({
      model: 'tiny',
      max_tokens: 4,
      messages: messages as never,
    });
    assert.equal(huge.object, 'chat.completion');
    for (let n = 0; n < 3; n++) {
      const res = await postJson(stack.url, '/v1/chat/completions', ordinary(n));
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const health = await fetch(`${stack.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { proxy: { status: string } }).proxy.status, 'ok');
  });
});

describe('/health when the proxy itself keeps failing', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => closeStack(stack));

  it('says "failing" with the last error and 503, and "ok" again once a request is served', async () => {
    const analyzer = stack.proxy.state.analyzer;
    const analyze = analyzer.analyze.bind(analyzer);
    analyzer.analyze = () => {
      throw new Error('injected analyser fault');
    };
    for (let n = 0; n < 3; n++) {
      const res = await postJson(stack.url, '/v1/chat/completions', ordinary(n));
      assert.equal(res.status, 500);
      assert.equal(res.body.error.code, 'internal_error');
      assert.doesNotMatch(res.body.error.message, /injected/, 'the cause stays in the log');
    }
    const failing = await fetch(`${stack.url}/health`);
    const body = (await failing.json()) as {
      status: string;
      proxy: { status: string; internal_errors_total: number; last_internal_error: { message: string } };
    };
    assert.equal(failing.status, 503);
    assert.equal(body.status, 'failing');
    assert.equal(body.proxy.internal_errors_total, 3);
    assert.equal(body.proxy.last_internal_error.message, 'injected analyser fault');
    // A health check is not a served request: it must not clear the state.
    assert.equal((await fetch(`${stack.url}/health`)).status, 503);

    analyzer.analyze = analyze;
    assert.equal((await postJson(stack.url, '/v1/chat/completions', ordinary(9))).status, 200);
    const healthy = await fetch(`${stack.url}/health`);
    assert.equal(healthy.status, 200);
    assert.equal(((await healthy.json()) as { status: string }).status, 'ok');
  });
});
