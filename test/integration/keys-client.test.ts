/**
 * API_KEYS over HTTP with the official OpenAI client: a wrong or missing key gets 401 (AuthenticationError) before
 * anything reaches the backend, a right key works as Bearer and as x-api-key, /health and `HEAD /` stay open,
 * `/v1/messages` answers in Anthropic's error shape (the key check's 401 and the route's 400 alike, seen by the
 * Anthropic SDK), and the client's key never travels on to the backend.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { MODEL, opening } from '../support/cache.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';

const KEYS = ['sk-alice-1b9e', 'sk-bob-77c2'];

describe('API_KEYS', { timeout: 60_000 }, () => {
  let stack: Stack;
  let tap: Tap;
  before(async () => {
    ({ stack, tap } = await startTappedStack({ env: { API_KEYS: KEYS.join(',') } }));
  });
  after(() => closeTappedStack({ stack, tap }));

  const client = (apiKey: string, headers: Record<string, string> = {}) =>
    new OpenAI({ baseURL: `${stack.url}/v1`, apiKey, defaultHeaders: headers, maxRetries: 0, timeout: 20_000 });
  const request = { model: MODEL, messages: opening(601), max_tokens: 4 };
  const chatsSeen = () => tap.requests.filter((r) => r.path === '/v1/chat/completions').length;

  it('a wrong key: 401 AuthenticationError in the OpenAI envelope, and nothing reaches the backend', async () => {
    const before = tap.requests.length;
    await assert.rejects(client('sk-alice-1b9f').chat.completions.create(request), (err: unknown) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      assert.deepEqual(err.error, {
        message: 'invalid API key',
        type: 'authentication_error',
        param: null,
        code: 'invalid_api_key',
      });
      return true;
    });
    await assert.rejects(client('wrong').models.list(), OpenAI.AuthenticationError);
    assert.equal(tap.requests.length, before, 'no request reached the backend');
  });

  it('no key at all: 401 missing_api_key; a streaming request too', async () => {
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...request, stream: true }),
    });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'missing_api_key');
  });

  it('the right key as Bearer: the chat is answered (streamed and not)', async () => {
    const before = chatsSeen();
    const res = await client(KEYS[1]!).chat.completions.create(request);
    assert.equal(res.choices[0]?.finish_reason, 'length');
    const stream = await client(KEYS[0]!).chat.completions.create({ ...request, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.ok(text.length > 0, 'the stream carried text');
    assert.equal(chatsSeen(), before + 2);
    assert.equal((await client(KEYS[0]!).models.list()).data[0]?.id, MODEL);
  });

  it('the right key as x-api-key: answered, alone or beside a placeholder Bearer the SDK always sends', async () => {
    const res = await client('placeholder', { 'x-api-key': KEYS[0]! }).chat.completions.create(request);
    assert.equal(res.choices[0]?.finish_reason, 'length');
    const raw = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEYS[1]! },
      body: JSON.stringify(request),
    });
    assert.equal(raw.status, 200, await raw.clone().text());
  });

  it('/health needs no key', async () => {
    const res = await fetch(`${stack.url}/health`);
    assert.equal(res.status, 200);
  });

  it("/v1/messages: 401 in Anthropic's error shape", async () => {
    for (const headers of [{}, { 'x-api-key': 'wrong' }] as Array<Record<string, string>>) {
      const res = await fetch(`${stack.url}/v1/messages?beta=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
        body: JSON.stringify({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(res.status, 401);
      const body = (await res.json()) as { type: string; error: { type: string; message: string } };
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'authentication_error');
      assert.match(body.error.message, /API key/);
    }
  });

  it("Anthropic SDK: a wrong key is AuthenticationError, the right x-api-key is answered (and not forwarded); the route's own 400 has the same shape", async () => {
    const anthropic = (apiKey: string) => new Anthropic({ baseURL: stack.url, apiKey, maxRetries: 0, timeout: 20_000 });
    const body = { model: MODEL, max_tokens: 4, messages: [{ role: 'user' as const, content: 'hi there' }] };
    await assert.rejects(anthropic('wrong').messages.create(body), (err: unknown) => {
      assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
      assert.deepEqual((err.error as { type: string; error: { type: string } }).error.type, 'authentication_error');
      return true;
    });
    const before = tap.requests.length;
    const message = await anthropic(KEYS[1]!).messages.create(body);
    assert.equal(message.type, 'message');
    const sent = tap.requests.slice(before).filter((r) => r.path === '/v1/chat/completions');
    assert.equal(sent.length, 1, 'converted to a chat completion');
    assert.equal(sent[0]!.headers['x-api-key'], undefined, "the client's key stays with the proxy");
    await assert.rejects(anthropic(KEYS[0]!).messages.create({ ...body, messages: [] }), (err: unknown) => {
      assert.ok(err instanceof Anthropic.BadRequestError, String(err));
      const shape = err.error as { type: string; error: { type: string; message: string } };
      assert.equal(shape.type, 'error');
      assert.equal(shape.error.type, 'invalid_request_error');
      assert.match(shape.error.message, /^messages/);
      return true;
    });
  });

  it("HEAD / needs no key (Claude Code's probe carries none); GET / does", async () => {
    assert.equal((await fetch(`${stack.url}/`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${stack.url}/`)).status, 401);
  });

  it("passthrough: needs a key, and the key is not forwarded; /proxycache/ is the proxy's own (its own access rule, never passed through)", async () => {
    const before = tap.requests.length;
    assert.equal((await fetch(`${stack.url}/tokenize`, { method: 'POST', body: '{"content":"hi"}' })).status, 401);
    assert.equal((await fetch(`${stack.url}/proxycache/anything`)).status, 404);
    assert.equal(tap.requests.length, before, 'no request reached the backend');

    const res = await fetch(`${stack.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS[0]}` },
      body: JSON.stringify({ content: 'hello world' }),
    });
    assert.equal(res.status, 200);
    const seen = tap.requests.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers.authorization, undefined, "the proxy's key stays with the proxy");
    assert.equal(seen[0]!.headers['x-api-key'], undefined);
  });

  it('a CORS preflight needs no key (browsers send none): it is passed on like any OPTIONS', async () => {
    const before = tap.requests.length;
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' },
    });
    assert.notEqual(res.status, 401);
    assert.deepEqual(
      tap.requests.slice(before).map((r) => r.method),
      ['OPTIONS'],
    );
  });
});
