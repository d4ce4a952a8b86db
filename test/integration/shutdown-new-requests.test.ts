/**
 * During shutdown, while an answer is still in progress, a request on a new connection gets 503 `shutting_down`
 * with a Retry-After (it used to be refused at the TCP level, while the README promised a 503). The answer in
 * progress still completes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';

describe('a new request while the proxy shuts down', () => {
  let stack: Stack;
  let tap: Tap;
  before(async () => {
    ({ stack, tap } = await startTappedStack());
  });
  after(() => closeTappedStack({ stack, tap }));

  it('gets 503 shutting_down with Retry-After while an answer is in progress, which still completes', async () => {
    const hold = tap.hold((r) => r.path === '/tokenize');
    const inProgress = fetch(`${stack.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'hello world' }),
    });
    await withDeadline(hold.arrived, 3000, 'the first request to reach the backend');
    const url = stack.url;
    const seen = tap.requests.length;
    const closing = stack.proxy.close();
    try {
      // A fresh connection (no keep-alive reuse), as a new client would open.
      const res = await withDeadline(
        fetch(`${url}/v1/models`, { headers: { connection: 'close' } }),
        3000,
        'the answer during shutdown',
      );
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '5');
      const body = (await res.json()) as { error: { code: string; type: string; message: string } };
      assert.equal(body.error.code, 'shutting_down');
      assert.equal(body.error.type, 'service_unavailable_error');
      assert.deepEqual(tap.requests.slice(seen), [], 'not forwarded');
    } finally {
      hold.release();
    }
    const first = await withDeadline(inProgress, 3000, 'the answer in progress');
    assert.equal(first.status, 200);
    await withDeadline(closing, 3000, 'the proxy to close');
    await stack.restartProxy();
  });
});
