/**
 * GET /v1/models (and /models) is the backend's own list, passed through; GET /health is the proxy's status with
 * the reachability of each backend: 200 "ok", 200 "degraded" when some backends are down, 503 when all are.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { closedPortUrl } from '../support/net.js';
import { startStack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import type { Stack } from '../support/stack.js';
import type { SimOptions } from '../../src/sim/index.js';

async function getJson(url: string): Promise<{ status: number; body: any; type: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, type: String(res.headers.get('content-type')), body: await res.json() };
}

/** `created` is the answer's own clock reading; everything else must be identical. */
function withoutCreated(body: any): unknown {
  return JSON.parse(JSON.stringify(body, (key, value) => (key === 'created' ? 0 : value)));
}

describe('GET /v1/models', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  // llama-swap has no /models of its own (its 404 would be passed through as well).
  const cases: Array<{ mode: SimOptions['mode']; models: string[]; paths: string[] }> = [
    { mode: 'llama-server', models: ['tiny'], paths: ['/v1/models', '/models'] },
    { mode: 'llama-swap', models: ['a', 'b'], paths: ['/v1/models'] },
  ];
  for (const { mode, models, paths } of cases) {
    it(`${mode}: the backend's body, passed through (${paths.join(', ')})`, async () => {
      stack = await startStack({ sim: { mode, models: models.map((id) => ({ id, nSlots: 2 })) } });
      for (const path of paths) {
        const direct = await getJson(`${stack.sim.url}${path}`);
        const proxied = await getJson(`${stack.url}${path}`);
        assert.equal(proxied.status, 200, path);
        assert.match(proxied.type, /application\/json/);
        assert.deepEqual(withoutCreated(proxied.body), withoutCreated(direct.body), path);
        assert.deepEqual(
          proxied.body.data.map((m: { id: string }) => m.id),
          models,
        );
      }
    });
  }
});

describe('GET /v1/models with the backend down', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { LLAMA_URL: await closedPortUrl() } });
  });
  after(() => closeStack(stack));

  it('502 in the OpenAI error shape, quickly', async () => {
    const started = performance.now();
    const res = await getJson(`${stack.url}/v1/models`);
    assert.equal(res.status, 502);
    assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(res.body.error.code, 'backend_unreachable');
    assert.ok(performance.now() - started < 1000);
  });
});

describe('GET /health', () => {
  let stack: Stack;
  let closed: string;
  before(async () => {
    closed = await closedPortUrl();
    stack = await startStack();
  });
  after(() => closeStack(stack));

  it('200 ok with the backend reachable', async () => {
    const res = await getJson(`${stack.url}/health`);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ok');
    assert.equal(res.body.backends.length, 1);
    assert.equal(res.body.backends[0].url, stack.sim.url);
    assert.equal(res.body.backends[0].reachable, true);
    assert.equal(res.body.backends[0].kind, 'llama-server');
    assert.equal(res.body.slots.busy, 0);
  });

  it('200 degraded when one of two backends is unreachable', async () => {
    await stack.restartProxy({ BACKENDS: JSON.stringify([{ url: stack.sim.url }, { url: closed }]) });
    const res = await getJson(`${stack.url}/health`);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'degraded');
    assert.deepEqual(
      res.body.backends.map((b: { url: string; reachable: boolean }) => [b.url, b.reachable]),
      [
        [stack.sim.url, true],
        [closed, false],
      ],
    );
    assert.equal(typeof res.body.backends[1].error, 'string');
  });

  it('503 when no backend is reachable, quickly', async () => {
    await stack.restartProxy({ BACKENDS: JSON.stringify([{ url: closed }]) });
    const started = performance.now();
    const res = await getJson(`${stack.url}/health`);
    assert.equal(res.status, 503);
    assert.equal(res.body.status, 'unavailable');
    assert.equal(res.body.backends[0].reachable, false);
    assert.ok(performance.now() - started < 1000);
  });
});
