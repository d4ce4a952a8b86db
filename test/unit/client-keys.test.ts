/**
 * The pure parts of the key checks: which keys a request presents, which requests need none, the constant-time
 * match, the error shape by path, and the backend's credential replacing a client's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withBackendKey } from '../../src/backend/backend-auth.js';
import { ProxyError } from '../../src/errors.js';
import { keyMatcher, openWithoutKey, presentedKeys } from '../../src/http/client-keys.js';
import { errorApiOf, errorBodyFor } from '../../src/http/error-shape.js';
import { refusedForKey } from '../../src/sim/api-key.js';

describe('client keys', () => {
  it('keyMatcher accepts exactly the configured keys, whatever their length', () => {
    const matches = keyMatcher(['sk-a', 'a-much-longer-key-of-the-second-client']);
    assert.equal(matches('sk-a'), true);
    assert.equal(matches('a-much-longer-key-of-the-second-client'), true);
    for (const wrong of ['', 'sk-', 'sk-a ', 'SK-A', 'sk-ab', 'a-much-longer-key-of-the-second-clien']) {
      assert.equal(matches(wrong), false, JSON.stringify(wrong));
    }
  });

  it('presentedKeys: the Bearer token (scheme in any case) and x-api-key; a bare Authorization is no key', () => {
    assert.deepEqual(presentedKeys({ authorization: 'Bearer sk-a' }), ['sk-a']);
    assert.deepEqual(presentedKeys({ authorization: 'bearer   sk-a ' }), ['sk-a']);
    assert.deepEqual(presentedKeys({ 'x-api-key': ' sk-b ' }), ['sk-b']);
    assert.deepEqual(presentedKeys({ authorization: 'Bearer sk-a', 'x-api-key': 'sk-b' }), ['sk-a', 'sk-b']);
    assert.deepEqual(presentedKeys({ authorization: 'sk-a' }), []);
    assert.deepEqual(presentedKeys({ authorization: 'Basic dXNlcjpwdw==' }), []);
    assert.deepEqual(presentedKeys({ authorization: 'Bearer two words' }), []);
    assert.deepEqual(presentedKeys({}), []);
  });

  it("openWithoutKey: /health, preflights and the proxy's own /proxycache routes; not a passed-through path", () => {
    const req = (method: string, url: string | undefined) => ({ method, routeOptions: { url } }) as never;
    assert.equal(openWithoutKey(req('GET', '/health')), true);
    assert.equal(openWithoutKey(req('OPTIONS', '/*')), true);
    assert.equal(openWithoutKey(req('GET', '/proxycache/')), true);
    assert.equal(openWithoutKey(req('GET', '/proxycache')), true);
    assert.equal(openWithoutKey(req('GET', '/*')), false, 'passthrough, also for a /proxycache/… path');
    assert.equal(openWithoutKey(req('POST', '/v1/chat/completions')), false);
    assert.equal(openWithoutKey(req('GET', '/proxycacheX')), false);
    assert.equal(openWithoutKey(req('GET', undefined)), false, 'no route (404)');
  });
});

describe('error shape by path', () => {
  it('Anthropic under /v1/messages (with query or sub-path), OpenAI elsewhere', () => {
    assert.equal(errorApiOf('/v1/messages'), 'anthropic');
    assert.equal(errorApiOf('/v1/messages?beta=true'), 'anthropic');
    assert.equal(errorApiOf('/v1/messages/count_tokens'), 'anthropic');
    assert.equal(errorApiOf('/v1/messagesX'), 'openai');
    assert.equal(errorApiOf('/v1/chat/completions?x=/v1/messages'), 'openai');
    assert.equal(errorApiOf('/v1/responses'), 'openai');
  });

  it('renders a ProxyError in either shape', () => {
    const err = new ProxyError(401, 'invalid_api_key', 'invalid API key');
    assert.deepEqual(errorBodyFor(err, '/v1/messages'), {
      type: 'error',
      error: { type: 'authentication_error', message: 'invalid API key' },
    });
    assert.deepEqual(errorBodyFor(err, '/v1/models'), {
      error: { message: 'invalid API key', type: 'authentication_error', param: null, code: 'invalid_api_key' },
    });
    assert.equal((errorBodyFor(new ProxyError(502, 'x', 'm'), '/v1/messages') as any).error.type, 'api_error');
    assert.equal((errorBodyFor(new ProxyError(503, 'x', 'm'), '/v1/messages') as any).error.type, 'overloaded_error');
    assert.equal((errorBodyFor(new ProxyError(413, 'x', 'm'), '/v1/messages') as any).error.type, 'request_too_large');
  });
});

describe('backend key', () => {
  it('replaces any credential of the client, whatever the case of its name', () => {
    const out = withBackendKey(
      { Authorization: 'Bearer client', 'x-api-key': 'client', 'content-type': 'application/json' },
      'sk-backend',
    );
    assert.deepEqual(out, { 'content-type': 'application/json', authorization: 'Bearer sk-backend' });
    assert.deepEqual(withBackendKey(undefined, 'k'), { authorization: 'Bearer k' });
  });

  it("without a key, headers are unchanged (a client's own credential passes through)", () => {
    const headers = { authorization: 'Bearer client' };
    assert.equal(withBackendKey(headers, null), headers);
    assert.equal(withBackendKey(undefined, null), undefined);
  });

  it("the simulator's --api-key behaves like llama-server's: Bearer, bare or X-Api-Key; /health open", () => {
    const keys = ['k1', 'k2'];
    const get = (path: string, headers: Record<string, string> = {}) =>
      refusedForKey(keys, { method: 'GET', path, headers });
    assert.equal(get('/props'), true);
    assert.equal(get('/props', { authorization: 'Bearer k2' }), false);
    assert.equal(get('/props', { authorization: 'k1' }), false);
    assert.equal(get('/props', { 'x-api-key': 'k1' }), false);
    assert.equal(
      get('/props', { authorization: 'Bearer nope', 'x-api-key': 'k1' }),
      true,
      'Authorization is read first',
    );
    assert.equal(get('/health'), false);
    assert.equal(get('/v1/health'), false);
    assert.equal(refusedForKey([], { method: 'GET', path: '/props', headers: {} }), false);
  });
});
