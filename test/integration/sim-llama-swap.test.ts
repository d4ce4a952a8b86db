/**
 * llama-swap mode: models start on demand and swap each other out (their slots are gone), `/upstream/{model}`
 * forwards and loads, `/running`, `/unload`, `/api/models/unload/{model}`, `/v1/models`, and its errors.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { chatBody, postJson, request } from '../../src/sim/sim-client.js';
import { assertSwapWaitsForRequestsInFlight } from '../support/sim-helpers.js';

describe('sim llama-swap', () => {
  let dir: string;
  let sim: SimHandle;
  const chat = (model: string, extra: Record<string, unknown> = {}) =>
    postJson(sim.url, '/v1/chat/completions', chatBody(`hello from ${model}`, { model, max_tokens: 2, ...extra }));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-swap-'));
    sim = await startSimulator({
      mode: 'llama-swap',
      models: [
        { id: 'a', nSlots: 2 },
        { id: 'b', nSlots: 2 },
      ],
      slotSavePath: dir,
      cost: { timeScale: 0 },
    });
  });
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts nothing until asked, then loads the requested model', async () => {
    assert.deepEqual(sim.loadedModels(), []);
    assert.deepEqual((await request(sim.url, '/running')).json(), { running: [] });
    const res = await chat('a', { id_slot: 0 });
    assert.equal(res.status, 200);
    assert.equal(res.json().model, 'a');
    assert.deepEqual(sim.loadedModels(), ['a']);
    assert.ok(sim.slotTokens('a', 0)!.length > 0);
    const running = (await request(sim.url, '/running')).json().running;
    assert.equal(running.length, 1);
    assert.deepEqual(Object.keys(running[0]).sort(), ['cmd', 'description', 'model', 'name', 'proxy', 'state', 'ttl']);
    assert.equal(running[0].model, 'a');
    assert.equal(running[0].state, 'ready');
    assert.equal(running[0].ttl, 0);
  });

  it('swaps: loading b stops a, whose slots are gone', async () => {
    const loadsBefore = sim.stats().loads;
    assert.equal((await chat('b')).status, 200);
    assert.deepEqual(sim.loadedModels(), ['b']);
    assert.equal(sim.slotTokens('a', 0), undefined);
    assert.equal(sim.stats().loads, loadsBefore + 1);
    const tail = sim.events.slice(-4).map((e) => `${e.type}:${e.model}`);
    assert.ok(tail.includes('unload:a') && tail.includes('load:b'), tail.join(' '));
  });

  it('forwards /upstream/{model}/… and loads the model when it is not running', async () => {
    await chat('b', { id_slot: 1 });
    const save = await postJson(sim.url, '/upstream/b/slots/1?action=save', { filename: 'b.bin' });
    assert.equal(save.status, 200);
    assert.ok(save.json().n_saved > 0);
    const restore = await postJson(sim.url, '/upstream/a/slots/0?action=restore', { filename: 'b.bin' });
    assert.deepEqual(sim.loadedModels(), ['a']);
    assert.equal(restore.status, 400, 'a file of model b must not restore into model a');
    const slots = await request(sim.url, '/upstream/a/slots');
    assert.equal(slots.status, 200);
    assert.equal(slots.json().length, 2);
  });

  it('lists configured models in llama-swap shape', async () => {
    const body = (await request(sim.url, '/v1/models')).json();
    assert.equal(body.object, 'list');
    assert.deepEqual(
      body.data.map((m: { id: string }) => m.id),
      ['a', 'b'],
    );
    assert.deepEqual(Object.keys(body.data[0]).sort(), ['created', 'id', 'object', 'owned_by']);
    assert.equal(body.data[0].owned_by, 'llama-swap');
    assert.equal(body.data[0].object, 'model');
  });

  it('unloads one model or all', async () => {
    await chat('a');
    assert.equal((await postJson(sim.url, '/api/models/unload/a', {})).body, 'OK');
    assert.deepEqual(sim.loadedModels(), []);
    const unknown = await postJson(sim.url, '/api/models/unload/zzz', {});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, 'Model not found');
    await chat('b');
    const all = await request(sim.url, '/unload');
    assert.equal(all.status, 200);
    assert.equal(all.body, 'OK');
    assert.deepEqual(sim.loadedModels(), []);
  });

  it('answers llama-swap errors in text, or JSON when accepted', async () => {
    const missing = await postJson(sim.url, '/v1/chat/completions', chatBody('no model'));
    assert.equal(missing.status, 400);
    assert.equal(missing.body, "missing or invalid 'model' key");
    const unknown = await postJson(sim.url, '/v1/chat/completions', chatBody('x', { model: 'zzz' }), {
      headers: { accept: 'application/json' },
    });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.json(), { error: 'could not find suitable inference handler for zzz' });
    const upstream = await request(sim.url, '/upstream/zzz/slots');
    assert.equal(upstream.status, 400);
    assert.equal(upstream.body, 'model id required in path');
    const redirect = await request(sim.url, '/upstream/a');
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, '/upstream/a/');
    assert.equal((await request(sim.url, '/slots')).status, 404);
    assert.equal((await request(sim.url, '/health')).body, 'OK');
  });

  it('keeps several models loaded with maxRunning', async () => {
    const multi = await startSimulator({
      mode: 'llama-swap',
      models: [{ id: 'a' }, { id: 'b' }, { id: 'c' }],
      maxRunning: 2,
      cost: { timeScale: 0 },
    });
    try {
      for (const m of ['a', 'b'])
        await postJson(multi.url, '/v1/chat/completions', chatBody('x', { model: m, max_tokens: 1 }));
      assert.deepEqual(multi.loadedModels(), ['a', 'b']);
      await postJson(multi.url, '/v1/chat/completions', chatBody('x', { model: 'c', max_tokens: 1 }));
      assert.deepEqual(multi.loadedModels(), ['b', 'c']);
    } finally {
      await multi.close();
    }
  });

  it('waits for requests in flight before swapping their model out', async () => {
    await assertSwapWaitsForRequestsInFlight({ mode: 'llama-swap' });
  });
});
