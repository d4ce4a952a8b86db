/**
 * BACKEND_API_KEY against a backend started with `--api-key` (the simulator's `apiKey`, which answers 401 to
 * everything but /health without it, as llama-server does). Before the setting existed, every chat and slot call
 * through the proxy got that 401: the client's header is not forwarded on managed routes, and there was no key to
 * send. Every call the proxy makes (probes, fingerprint, chats, saves, restores, passthrough) must carry it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chat, continued, keyOf, opening, slotFileEvents } from '../support/cache.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';

const BACKEND_KEY = 'sk-backend-7f3a';

describe('BACKEND_API_KEY', { timeout: 60_000 }, () => {
  let stack: Stack;
  let tap: Tap;
  before(async () => {
    // auto: the kind probes (/running, /models) go to the backend too; /props total_slots is always checked.
    ({ stack, tap } = await startTappedStack({
      sim: { apiKey: BACKEND_KEY },
      env: { BACKEND_TYPE: 'auto', BACKEND_API_KEY: BACKEND_KEY },
    }));
  });
  after(() => closeTappedStack({ stack, tap }));

  it('the backend really demands the key (the simulator answers 401 without it, /health stays open)', async () => {
    const props = await fetch(`${stack.sim.url}/props`);
    assert.equal(props.status, 401);
    assert.deepEqual(await props.json(), {
      error: { code: 401, message: 'Invalid API Key', type: 'authentication_error' },
    });
    assert.equal((await fetch(`${stack.sim.url}/health`)).status, 200);
  });

  it('chat, save, eviction and restore work, and every backend call carried the key', async () => {
    const a = opening(501);
    const first = await chat(stack, a);
    assert.equal(first.finishReason, 'length', 'the first answer is complete');
    for (let seed = 510; seed < 514; seed++) await chat(stack, opening(seed)); // take both slots, twice
    const next = await chat(stack, continued(a, first.content, 502), { stream: true });
    assert.equal(next.line.decision, 'restore', 'the evicted conversation was restored');
    assert.equal(next.line.restore?.ok, true);
    assert.ok(next.timings.cache_n > first.timings.prompt_n / 2, `cache_n ${next.timings.cache_n} shows the reuse`);
    assert.ok(
      slotFileEvents(stack.sim, 'save').some((e) => e.filename === keyOf(a) && e.ok),
      'A was saved',
    );

    const paths = new Set(tap.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`));
    for (const expected of [
      'GET /running',
      'GET /models',
      'GET /props',
      'POST /v1/chat/completions',
      'POST /slots/0',
      'POST /slots/1',
    ]) {
      assert.ok(paths.has(expected), `${expected} reached the backend (saw ${[...paths].join(', ')})`);
    }
    const without = tap.requests.filter((r) => r.headers.authorization !== `Bearer ${BACKEND_KEY}`);
    assert.deepEqual(
      without.map((r) => `${r.method} ${r.path}`),
      [],
      'calls without the backend key',
    );
  });

  it("passthrough: the backend key replaces the client's own Authorization and x-api-key", async () => {
    const mark = tap.requests.length;
    const res = await fetch(`${stack.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer client-own', 'x-api-key': 'client-own' },
      body: JSON.stringify({ content: 'hello world' }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok(Array.isArray(((await res.json()) as { tokens?: unknown }).tokens));
    const seen = tap.requests.slice(mark);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers.authorization, `Bearer ${BACKEND_KEY}`);
    assert.equal(seen[0]!.headers['x-api-key'], undefined);
  });
});
