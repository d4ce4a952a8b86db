/**
 * Request headers that belong to the client's connection stay there: `Expect: 100-continue` (curl sends it for
 * bodies over 1 MB) used to make undici refuse the passthrough request with a 502, and headers named in the client's
 * `Connection` header were forwarded to the backend.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { withDeadline } from '../support/deadline.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';

/**
 * POST `body` the way curl does with `Expect: 100-continue`: send the headers, wait for the interim
 * `100 Continue`, only then send the body, and read the final answer.
 */
function postExpectingContinue(
  base: string,
  path: string,
  body: string,
): Promise<{ continued: boolean; status: number; body: string }> {
  const exchange = new Promise<{ continued: boolean; status: number; body: string }>((resolve, reject) => {
    let continued = false;
    const req = http.request(new URL(path, base), {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        expect: '100-continue',
      },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
  return withDeadline(exchange, 5000, `${path} with Expect: 100-continue`);
}

describe('client connection headers', () => {
  let stack: Stack;
  let tap: Tap;
  before(async () => {
    ({ stack, tap } = await startTappedStack());
  });
  after(() => closeTappedStack({ stack, tap }));

  it("Expect: 100-continue on a passed-through path: 100, then the backend's 200; no expect header upstream", async () => {
    const res = await postExpectingContinue(stack.url, '/tokenize', JSON.stringify({ content: 'hello world' }));
    assert.equal(res.continued, true, 'the proxy answered 100 Continue');
    assert.equal(res.status, 200, res.body);
    assert.ok(Array.isArray(JSON.parse(res.body).tokens), res.body);
    const forwarded = tap.requests.filter((r) => r.path === '/tokenize');
    assert.equal(forwarded.length, 1);
    assert.equal(forwarded[0]!.headers.expect, undefined);
  });

  it('Expect: 100-continue on the chat route: 100, then the completion', async () => {
    const body = JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 2 });
    const res = await postExpectingContinue(stack.url, '/v1/chat/completions', body);
    assert.equal(res.continued, true, 'the proxy answered 100 Continue');
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).object, 'chat.completion');
  });

  it('headers named in Connection are not forwarded; the others are', async () => {
    // (fetch drops a Connection header it is given, so the request is made with node:http.)
    const body = JSON.stringify({ content: 'connection header test' });
    const status = await withDeadline(
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          new URL('/tokenize', stack.url),
          {
            method: 'POST',
            agent: false,
            headers: {
              'content-type': 'application/json',
              connection: 'keep-alive, X-Hop-Secret',
              'x-hop-secret': 'for the proxy only',
              'x-end-to-end': 'kept',
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
      5000,
      'the answer',
    );
    assert.equal(status, 200);
    const forwarded = tap.requests.filter((r) => r.body?.content === 'connection header test');
    assert.equal(forwarded.length, 1);
    assert.equal(forwarded[0]!.headers['x-hop-secret'], undefined);
    assert.equal(forwarded[0]!.headers['x-end-to-end'], 'kept');
  });
});
