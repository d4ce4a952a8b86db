/**
 * /health reports a backend that answers but cannot serve yet: llama-server answers 503 "Loading model" while its
 * model loads, which /health used to report as "ok" because the backend was reachable.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator } from '../../src/sim/index.js';
import type { SimHandle } from '../../src/sim/index.js';
import { withDeadline } from '../support/deadline.js';
import { decodeOnlyCost } from '../support/sim-helpers.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

async function health(url: string): Promise<{ status: number; body: any }> {
  const res = await withDeadline(fetch(`${url}/health`), 5000, '/health');
  return { status: res.status, body: await res.json() };
}

/** Model loads take this long (wall time); everything else is instant. */
const LOAD_MS = 1500;

describe('GET /health while a backend loads its model', () => {
  let stack: Stack;
  let second: SimHandle | undefined;
  before(async () => {
    stack = await startStack({ sim: { cost: { ...decodeOnlyCost(0), modelLoadMs: LOAD_MS } } });
  });
  after(async () => {
    await second?.close();
    await closeStack(stack);
  });

  it('503 "loading", with the backend\'s state and message, then 200 "ok" once it is ready', async () => {
    assert.equal((await health(stack.url)).body.backends[0].state, 'ok');
    const restarting = stack.sim.restart();
    const during = await health(stack.url);
    assert.equal(during.status, 503);
    assert.equal(during.body.status, 'loading');
    const [backend] = during.body.backends;
    assert.equal(backend.reachable, true);
    assert.equal(backend.state, 'loading');
    assert.equal(backend.status, 503);
    assert.equal(backend.detail, 'Loading model');
    await withDeadline(restarting, LOAD_MS + 3000, 'the restart');
    const afterLoad = await health(stack.url);
    assert.equal(afterLoad.status, 200);
    assert.equal(afterLoad.body.status, 'ok');
  });

  it('200 "degraded" while one of two backends loads', async () => {
    second = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'tiny', nSlots: 1 }],
      cost: { ...decodeOnlyCost(0), modelLoadMs: LOAD_MS },
    });
    await stack.restartProxy({ BACKENDS: JSON.stringify([{ url: stack.sim.url }, { url: second.url }]) });
    const restarting = second.restart();
    const during = await health(stack.url);
    assert.equal(during.status, 200);
    assert.equal(during.body.status, 'degraded');
    assert.deepEqual(
      during.body.backends.map((b: { state: string }) => b.state),
      ['ok', 'loading'],
    );
    await withDeadline(restarting, LOAD_MS + 3000, 'the restart');
  });
});
