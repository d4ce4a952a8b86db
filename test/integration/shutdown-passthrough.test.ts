/**
 * Graceful shutdown covers passed-through requests too: one still waiting for the backend when the proxy is asked
 * to stop gets its answer, instead of having its connection cut as soon as no chat is in progress.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';

describe('shutdown while a passed-through request is in flight', () => {
  let stack: Stack;
  let tap: Tap;
  before(async () => {
    ({ stack, tap } = await startTappedStack());
  });
  after(() => closeTappedStack({ stack, tap }));

  it('lets it finish before the connections are closed', async () => {
    const hold = tap.hold((r) => r.path === '/tokenize');
    const answer = fetch(`${stack.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'hello world' }),
    });
    await withDeadline(hold.arrived, 3000, 'the request to reach the backend');
    const closing = stack.proxy.close();
    // Long enough for several rounds of the shutdown sweep, which cuts every connection once nothing is in flight.
    await new Promise((r) => setTimeout(r, 300));
    hold.release();
    const res = await withDeadline(answer, 3000, 'the answer');
    assert.equal(res.status, 200);
    const body = (await res.json()) as { tokens: unknown[] };
    assert.ok(Array.isArray(body.tokens) && body.tokens.length > 0, JSON.stringify(body));
    await withDeadline(closing, 3000, 'the proxy to close');
    await stack.restartProxy({ LLAMA_URL: tap.url, BACKEND_TYPE: 'llama-server' });
  });
});
