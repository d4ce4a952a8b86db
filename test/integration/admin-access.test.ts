/**
 * Who may use the API under /proxycache/: with ADMIN_TOKEN, whoever sends it (Bearer, or ?token= for the
 * dashboard), 401 otherwise; without it, only loopback clients that address a loopback host from no other origin.
 * /metrics stays open either way (aggregates only, for Prometheus).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { api, rawApi } from '../support/proxycache-api.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';

const TOKEN = 's3cret-token-for-tests';
const ROUTES: Array<[string, string]> = [
  ['GET', '/proxycache/status'],
  ['GET', '/proxycache/requests'],
  ['GET', '/proxycache/history'],
  ['GET', '/proxycache/entries'],
  ['DELETE', `/proxycache/entries/${'0'.repeat(64)}`],
  ['POST', '/proxycache/cleanup'],
  ['POST', '/proxycache/save'],
  ['POST', '/proxycache/slots/0/0/erase'],
];

describe('admin access with ADMIN_TOKEN', { timeout: 60_000 }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { ADMIN_TOKEN: TOKEN } });
  });
  after(async () => stack?.close());

  it('every route answers 401 without the token and with a wrong one, in the OpenAI error shape', async () => {
    for (const [method, path] of ROUTES) {
      const none = await api(stack.url, method, path);
      assert.equal(none.status, 401, `${method} ${path}`);
      assert.equal(none.body.error.code, 'missing_token');
      assert.equal(none.body.error.type, 'authentication_error');
      const wrong = await api(stack.url, method, path, { token: TOKEN + 'x' });
      assert.equal(wrong.status, 401, `${method} ${path}`);
      assert.equal(wrong.body.error.code, 'invalid_token');
      const short = await api(stack.url, method, path, { token: 's' });
      assert.equal(short.status, 401);
    }
  });

  it('the right token opens every route (Bearer, or ?token= for the dashboard page)', async () => {
    for (const [method, path] of ROUTES) {
      const res = await api(stack.url, method, path, { token: TOKEN });
      assert.ok(
        res.status !== 401 && res.status !== 403,
        `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`,
      );
    }
    assert.equal((await api(stack.url, 'GET', `/proxycache/status?token=${TOKEN}`)).status, 200);
    assert.equal((await api(stack.url, 'GET', `/proxycache/status?token=${TOKEN}x`)).status, 401);
    // With a token the Host and Origin rules do not apply: the token is the proof.
    assert.equal(
      (
        await rawApi(stack.url, 'GET', '/proxycache/status', {
          host: 'proxy.example:8081',
          authorization: `Bearer ${TOKEN}`,
        })
      ).status,
      200,
    );
  });

  it('/metrics needs no token', async () => {
    assert.equal((await api(stack.url, 'GET', '/metrics')).status, 200);
  });
});

describe('admin access without ADMIN_TOKEN', { timeout: 60_000 }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => stack?.close());

  it('a loopback client addressing a loopback host gets in, from the same origin or none', async () => {
    const port = new URL(stack.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const res = await rawApi(stack.url, 'GET', '/proxycache/status', { host });
      assert.equal(res.status, 200, host);
    }
    const sameOrigin = await rawApi(stack.url, 'POST', '/proxycache/save', { origin: stack.url });
    assert.equal(sameOrigin.status, 200);
  });

  it('another Host (DNS rebinding) or another Origin (a web page) gets 403', async () => {
    const port = new URL(stack.url).port;
    const rebound = await rawApi(stack.url, 'GET', '/proxycache/status', { host: `attacker.example:${port}` });
    assert.equal(rebound.status, 403);
    assert.equal(rebound.body.error.code, 'loopback_only');
    assert.equal(rebound.body.error.type, 'permission_error');
    const page = await rawApi(stack.url, 'POST', '/proxycache/cleanup', { origin: 'http://attacker.example' });
    assert.equal(page.status, 403);
  });
});
