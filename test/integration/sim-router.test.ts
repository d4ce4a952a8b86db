/**
 * llama-server router mode: routing by body `model` / `?model=`, autoload and `autoload=false`, `/models` with
 * status values, `/models/load` and `/models/unload`, and the least recently used model unloaded beyond
 * `modelsMax`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { chatBody, postJson, request } from '../../src/sim/sim-client.js';
import { assertSwapWaitsForRequestsInFlight } from '../support/sim-helpers.js';

const err = (code: number, message: string, type = 'invalid_request_error') =>
  JSON.stringify({ error: { code, message, type } });

describe('sim router mode', () => {
  let dir: string;
  let sim: SimHandle;
  const status = async (id: string): Promise<string> =>
    (await request(sim.url, '/models')).json().data.find((m: { id: string }) => m.id === id).status.value;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-router-'));
    sim = await startSimulator({
      mode: 'router',
      models: [
        { id: 'a', nSlots: 2 },
        { id: 'b', nSlots: 2 },
        { id: 'c', nSlots: 2 },
      ],
      slotSavePath: dir,
      modelsMax: 2,
      cost: { timeScale: 0 },
    });
  });
  after(async () => {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every model as unloaded at start; answers its own /health and /props', async () => {
    const body = (await request(sim.url, '/models')).json();
    assert.equal(body.object, 'list');
    assert.deepEqual(
      body.data.map((m: { id: string }) => m.id),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(Object.keys(body.data[0]), ['id', 'aliases', 'tags', 'object', 'owned_by', 'created', 'status']);
    assert.equal(body.data[0].status.value, 'unloaded');
    assert.deepEqual((await request(sim.url, '/v1/models')).json().data.length, 3);
    assert.equal((await request(sim.url, '/health')).body, '{"status":"ok"}');
    const props = (await request(sim.url, '/props')).json();
    assert.equal(props.role, 'router');
    assert.equal(props.max_instances, 2);
  });

  it('autoloads the model of a chat', async () => {
    const res = await postJson(
      sim.url,
      '/v1/chat/completions',
      chatBody('hi', { model: 'a', max_tokens: 2, id_slot: 0 }),
    );
    assert.equal(res.status, 200);
    assert.equal(await status('a'), 'loaded');
    assert.ok((await request(sim.url, '/models')).json().data[0].meta.n_ctx > 0);
    assert.deepEqual(sim.loadedModels(), ['a']);
  });

  it('routes slot actions by the body model; refuses them without one', async () => {
    const save = await postJson(sim.url, '/slots/0?action=save', { model: 'a', filename: 'a.bin' });
    assert.equal(save.status, 200);
    assert.ok(save.json().n_saved > 0);
    const noModel = await postJson(sim.url, '/slots/0?action=save', { filename: 'a.bin' });
    assert.equal(noModel.status, 400);
    assert.equal(noModel.body, err(400, 'model name is missing from the request'));
    const unknown = await postJson(sim.url, '/slots/0?action=save', { model: 'zzz', filename: 'a.bin' });
    assert.equal(unknown.body, err(400, "model 'zzz' not found"));
  });

  it('answers 400 model is not loaded with autoload=false, and autoloads otherwise', async () => {
    const refused = await postJson(sim.url, '/slots/1?action=restore&autoload=false', {
      model: 'b',
      filename: 'a.bin',
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body, err(400, 'model is not loaded'));
    assert.equal(await status('b'), 'unloaded');
    const restored = await postJson(sim.url, '/slots/1?action=restore', { model: 'b', filename: 'a.bin' });
    assert.equal(restored.status, 400, 'a file of model a must not restore into model b');
    assert.equal(await status('b'), 'loaded');
  });

  it('routes GETs by ?model=', async () => {
    const slots = await request(sim.url, '/slots?model=a');
    assert.equal(slots.status, 200);
    assert.equal(slots.json().length, 2);
    assert.equal((await request(sim.url, '/props?model=b')).json().model_alias, 'b');
    assert.equal((await request(sim.url, '/slots')).body, err(400, 'model name is missing from the request'));
    assert.equal((await request(sim.url, '/slots?model=c&autoload=false')).body, err(400, 'model is not loaded'));
  });

  it('unloads the least recently used model beyond modelsMax', async () => {
    await postJson(sim.url, '/v1/chat/completions', chatBody('touch a', { model: 'a', max_tokens: 1 }));
    await postJson(sim.url, '/v1/chat/completions', chatBody('load c', { model: 'c', max_tokens: 1 }));
    assert.deepEqual(sim.loadedModels().sort(), ['a', 'c']);
    assert.equal(await status('b'), 'unloaded');
  });

  it('beyond modelsMax, the model unloaded finishes its requests in flight first (as the real router does)', async () => {
    await assertSwapWaitsForRequestsInFlight({ mode: 'router', modelsMax: 1 });
  });

  it('loads and unloads models on request', async () => {
    assert.equal((await postJson(sim.url, '/models/unload', { model: 'c' })).body, '{"success":true}');
    assert.equal(await status('c'), 'unloaded');
    assert.equal((await postJson(sim.url, '/models/unload', { model: 'c' })).body, err(400, 'model is not running'));
    assert.equal((await postJson(sim.url, '/models/unload', { model: 'zzz' })).body, err(400, 'model is not found'));
    assert.equal((await postJson(sim.url, '/models/load', { model: 'a' })).body, err(400, 'model is already running'));
    const unknown = await postJson(sim.url, '/models/load', { model: 'zzz' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}');
    assert.equal((await postJson(sim.url, '/models/load', { model: 'c' })).body, '{"success":true}');
    assert.equal((await request(sim.url, '/slots?model=c')).status, 200);
    assert.equal(await status('c'), 'loaded');
  });

  it('answers a body that does not parse with the json exception text', async () => {
    const res = await request(sim.url, '/slots/0?action=erase', { method: 'POST' });
    assert.equal(res.status, 500);
    assert.equal(res.json().error.type, 'server_error');
  });

  it('shows status loading while a model loads', async () => {
    const slow = await startSimulator({
      mode: 'router',
      models: [{ id: 'x' }],
      cost: { timeScale: 1, modelLoadMs: 300 },
    });
    try {
      assert.equal((await postJson(slow.url, '/models/load', { model: 'x' })).body, '{"success":true}');
      const body = (await request(slow.url, '/models')).json();
      assert.equal(body.data[0].status.value, 'loading');
      // A request for a loading model waits for it.
      const res = await postJson(slow.url, '/v1/chat/completions', chatBody('x', { model: 'x', max_tokens: 1 }));
      assert.equal(res.status, 200);
      assert.deepEqual(slow.loadedModels(), ['x']);
    } finally {
      await slow.close();
    }
  });
});
