import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { MAX_JSON_DEPTH, nestingExceeds, registerJsonBodyParser, upstreamBody } from '../../src/http/json-body.js';

/** What the upstream body would be for a request body sent as `raw`, and whether it kept the client's bytes. */
async function upstreamFor(raw: string, fields: Record<string, unknown>) {
  const app = Fastify();
  registerJsonBodyParser(app);
  let out: Buffer | string = '';
  app.post('/', async (request) => {
    out = upstreamBody(request.body as Record<string, unknown>, fields);
    return {};
  });
  const res = await app.inject({
    method: 'POST',
    url: '/',
    headers: { 'content-type': 'application/json' },
    payload: raw,
  });
  await app.close();
  return { status: res.statusCode, error: res.json(), text: out.toString(), spliced: Buffer.isBuffer(out) };
}

test('the client bytes are kept and the fields spliced in before the closing brace', async () => {
  const raw = '{"model":"m", "messages":[{"role":"user","content":"h\\u00e9 } {"}],"x":1.50}\n  ';
  const { text, spliced } = await upstreamFor(raw, { id_slot: 3, cache_prompt: true, absent: undefined });
  assert.equal(spliced, true);
  assert.equal(
    text,
    '{"model":"m", "messages":[{"role":"user","content":"h\\u00e9 } {"}],"x":1.50,"id_slot":3,"cache_prompt":true}\n  ',
  );
  assert.deepEqual(JSON.parse(text), {
    model: 'm',
    messages: [{ role: 'user', content: 'hé } {' }],
    x: 1.5,
    id_slot: 3,
    cache_prompt: true,
  });
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
  const { text, spliced } = await upstreamFor('{"messages":[],"id_slot":7,"cache_prompt":false}', {
    id_slot: 1,
    cache_prompt: undefined,
  });
  assert.equal(spliced, false);
  assert.deepEqual(JSON.parse(text), { messages: [], id_slot: 1, cache_prompt: false });
});

test('JSON nested deeper than MAX_JSON_DEPTH is a 400 invalid_json error; at the limit it is accepted', async () => {
  const nested = (depth: number) => `{"messages":[],"x":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
  const deep = await upstreamFor(nested(100_000), {});
  assert.equal(deep.status, 400);
  assert.equal(deep.error.code, 'invalid_json');
  assert.match(deep.error.message, /nested deeper than 512 levels/);
  assert.equal((await upstreamFor(nested(MAX_JSON_DEPTH), {})).status, 200);
  assert.equal((await upstreamFor(nested(MAX_JSON_DEPTH + 1), {})).status, 400);
});

test('nestingExceeds counts only brackets outside strings, escaped quotes included', () => {
  const b = (text: string) => Buffer.from(text);
  assert.equal(nestingExceeds(b('[[1]]'), 2), false);
  assert.equal(nestingExceeds(b('[[[1]]]'), 2), true);
  assert.equal(nestingExceeds(b('{"a":{"b":[1]}}'), 2), true);
  assert.equal(nestingExceeds(b('["[[[[", "{{{{"]'), 1), false);
  assert.equal(
    nestingExceeds(b(String.raw`["\\", [[1]]]`), 2),
    true,
    'an escaped backslash does not escape the quote after it',
  );
  assert.equal(nestingExceeds(b(String.raw`["\"[[[", 1]`), 1), false, 'an escaped quote does not end the string');
  assert.equal(nestingExceeds(b('[[], [], {}]'), 2), false, 'siblings do not add up');
});

test('a text/plain body is parsed as JSON (as llama-server does)', async () => {
  const app = Fastify();
  registerJsonBodyParser(app);
  app.post('/', async (request) => ({ got: request.body }));
  const res = await app.inject({
    method: 'POST',
    url: '/',
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    payload: '{"messages":[]}',
  });
  await app.close();
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { got: { messages: [] } });
});
