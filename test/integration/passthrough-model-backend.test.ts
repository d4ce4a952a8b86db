/**
 * A passthrough request goes to the backend serving the model it names (JSON body `model`, `?model=`, llama-swap's
 * `/upstream/{model}/…`), not always the first; a model no backend serves is a 404 listing the models. Anthropic's
 * `/v1/messages/count_tokens` too, with its errors in Anthropic's shape.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createProxy } from '../../src/proxy.js';
import type { Proxy } from '../../src/proxy.js';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { LogCapture, TEST_PROXY_ENV } from '../support/stack.js';

describe('passthrough to the backend serving the model', { timeout: 60_000 }, () => {
  let simA: SimHandle;
  let simB: SimHandle;
  let proxy: Proxy;
  let url: string;
  before(async () => {
    simA = await startSimulator({ mode: 'llama-swap', models: [{ id: 'alpha', nSlots: 1 }], cost: { timeScale: 0 } });
    simB = await startSimulator({
      mode: 'llama-swap',
      models: [
        { id: 'beta', nSlots: 1 },
        { id: 'org/gamma', nSlots: 1 },
      ],
      cost: { timeScale: 0 },
    });
    const backends = JSON.stringify([
      { url: simA.url, type: 'llama-swap' },
      { url: simB.url, type: 'llama-swap' },
    ]);
    const config = loadConfig([], { ...TEST_PROXY_ENV, BACKENDS: backends, META_DIR: '/nonexistent-meta-dir-unused' });
    proxy = await createProxy(config, createLogger('silent', new LogCapture()));
    url = await proxy.listen();
  });
  after(async () => {
    await proxy?.close();
    await simA?.close();
    await simB?.close();
  });

  it('llama-swap /upstream/{model}/… (a model name with a slash too) reaches the backend serving that model', async () => {
    for (const [path, alias] of [
      ['/upstream/beta/props', 'beta'],
      ['/upstream/org/gamma/props', 'org/gamma'],
      ['/upstream/alpha/props', 'alpha'],
    ]) {
      const res = await fetch(`${url}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(((await res.json()) as { model_alias: string }).model_alias, alias);
    }
  });

  it('a JSON body naming the model goes to its backend (which starts that model to answer it)', async () => {
    const res = await fetch(`${url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'beta', input: 'hello world' }),
    });
    assert.doesNotMatch(
      await res.text(),
      /could not find suitable inference handler/,
      'not the first backend, which has no beta',
    );
    const running = (await (await fetch(`${simB.url}/running`)).json()) as { running: Array<{ model: string }> };
    assert.ok(
      running.running.some((r) => r.model === 'beta'),
      'the second backend served it',
    );
  });

  it('an unknown model is a 404 in the OpenAI shape listing the models', async () => {
    const res = await fetch(`${url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nope', content: 'x' }),
    });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { code: string; message: string; param: string } };
    assert.equal(body.error.code, 'model_not_found');
    assert.equal(body.error.param, 'model');
    assert.match(body.error.message, /alpha, beta, org\/gamma/);
  });

  it("Anthropic count_tokens goes to the backend serving its model; an unknown model is a 404 in Anthropic's shape", async () => {
    const anthropic = new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
    const counted = await anthropic.messages.countTokens({
      model: 'org/gamma',
      messages: [{ role: 'user', content: 'count these words' }],
    });
    assert.ok(counted.input_tokens > 0);
    const running = (await (await fetch(`${simB.url}/running`)).json()) as { running: Array<{ model: string }> };
    assert.ok(
      running.running.some((r) => r.model === 'org/gamma'),
      'the second backend served it',
    );
    await assert.rejects(
      anthropic.messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (err: unknown) => {
        assert.ok(err instanceof Anthropic.NotFoundError, String(err));
        const shape = err.error as { type: string; error: { type: string; message: string } };
        assert.equal(shape.type, 'error');
        assert.equal(shape.error.type, 'not_found_error');
        assert.match(shape.error.message, /alpha, beta, org\/gamma/);
        return true;
      },
    );
  });
});
