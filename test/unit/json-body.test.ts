import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { registerJsonBodyParser, upstreamBody } from '../../src/http/json-body.js';

/** What the upstream body would be for a request body sent as `raw`, and whether it kept the client's bytes. */
async function upstreamFor(raw: string, fields: Record<string, unknown>) {
  const app = Fastify();
  registerJsonBodyParser(app);
  let out: Buffer | string = '';
  app.post('/', async (request) => {
    out = upstreamBody(request.body as Record<string, unknown>, fields);
    return {};
  });
  const res = await app.inject({ method: 'POST', url: '/', headers: { 'content-type': 'application/json' }, payload: raw });
  await app.close();
  return { status: res.statusCode, error: res.json(), text: out.toString(), spliced: Buffer.isBuffer(out) };
}

test('the client bytes are kept and the fields spliced in before the closing brace', async () => {
  const raw = '{"model":"m", "messages":[{"role":"user","content":"h\\u00e9 } {"}],"x":1.50}\n  ';
  const { text, spliced } = await upstreamFor(raw, { id_slot: 3, cache_prompt: true, absent: undefined });
  assert.equal(spliced, true);
  assert.equal(text, '{"model":"m", "messages":[{"role":"user","content":"h\\u00e9 } {"}],"x":1.50,"id_slot":3,"cache_prompt":true}\n  ');
  assert.deepEqual(JSON.parse(text), { model: 'm', messages: [{ role: 'user', content: 'hé } {' }], x: 1.5, id_slot: 3, cache_prompt: true });
});

test('a field the client set already: serialised again, the proxy value wins', async () => {
  const { text, spliced } = await upstreamFor('{"messages":[],"id_slot":7}', { id_slot: 1 });
  assert.equal(spliced, false);
  assert.deepEqual(JSON.parse(text), { messages: [], id_slot: 1 });
});

test('an empty object gets no leading comma; a body that did not come through the parser is serialised', async () => {
  assert.equal((await upstreamFor('{ }', { id_slot: 0 })).text, '{ "id_slot":0}');
  assert.equal(upstreamBody({ messages: [] }, { id_slot: 2 }), '{"messages":[],"id_slot":2}');
});

// The OpenAI error shape of this 400 is the app's error handler's work (see errors-requests.test.ts).
test('malformed JSON is a 400 invalid_json error', async () => {
  const { status, error } = await upstreamFor('{"messages": [', {});
  assert.equal(status, 400);
  assert.equal(error.code, 'invalid_json');
  assert.match(error.message, /^invalid JSON body: /);
});

test("a field left undefined never overrides the client's own value (cache_prompt: false next to id_slot)", async () => {
  const { text, spliced } = await upstreamFor('{"messages":[],"id_slot":7,"cache_prompt":false}', { id_slot: 1, cache_prompt: undefined });
  assert.equal(spliced, false);
  assert.deepEqual(JSON.parse(text), { messages: [], id_slot: 1, cache_prompt: false });
});
