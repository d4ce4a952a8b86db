/**
 * The simulator's answers against the recordings of a real llama-server (/work/shared/llama-server-captures):
 * same key sets (in the same order, recursively), same value types, same headers and status codes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { chatBody, postJson, request, sseData, type RawResponse } from '../../src/sim/sim-client.js';

// Bodies copied verbatim from the captures.
const PARAMS =
  '{"seed":4294967295,"temperature":0.800000011920929,"dynatemp_range":0.0,"dynatemp_exponent":1.0,"top_k":40,"top_p":0.949999988079071,"min_p":0.05000000074505806,"top_n_sigma":-1.0,"xtc_probability":0.0,"xtc_threshold":0.10000000149011612,"typical_p":1.0,"repeat_last_n":64,"repeat_penalty":1.0,"presence_penalty":0.0,"frequency_penalty":0.0,"dry_multiplier":0.0,"dry_base":1.75,"dry_allowed_length":2,"dry_penalty_last_n":64,"mirostat":0,"mirostat_tau":5.0,"mirostat_eta":0.10000000149011612,"adaptive_target":-1.0,"adaptive_decay":0.8999999761581421,"max_tokens":-1,"n_predict":-1,"n_keep":0,"n_discard":0,"ignore_eos":false,"stream":false,"n_probs":0,"min_keep":0,"chat_format":"Content-only","reasoning_format":"none","reasoning_in_content":false,"generation_prompt":"","samplers":["penalties","dry","top_n_sigma","top_k","typ_p","top_p","min_p","xtc","temperature"],"speculative.types":"none","timings_per_token":false,"post_sampling_probs":false,"backend_sampling":false,"lora":[]}';
const CAPTURE = {
  props: `{"default_generation_settings":{"params":${PARAMS},"n_ctx":16384},"total_slots":4,"model_alias":"tiny","model_ftype":"F16","model_path":"/models/tiny.gguf","modalities":{"vision":false,"video":false,"audio":false},"media_marker":"<__media_tUVbNMagUVhE9pDDBJbBpJxYKUpENDnh__>","endpoint_slots":true,"endpoint_props":false,"endpoint_metrics":true,"ui":true,"ui_settings":{},"chat_template":"x","chat_template_caps":{"supports_object_arguments":false,"supports_parallel_tool_calls":false,"supports_preserve_reasoning":false,"supports_reasoning_effort":false,"supports_string_content":true,"supports_system_role":true,"supports_tool_calls":false,"supports_tools":false,"supports_typed_content":false},"bos_token":"<s>","eos_token":"</s>","build_info":"b0-unknown","is_sleeping":false,"cors_proxy_enabled":false}`,
  models:
    '{"models":[{"name":"tiny","model":"tiny","modified_at":"","size":"","digest":"","type":"model","description":"","tags":[""],"capabilities":["completion"],"parameters":"","details":{"parent_model":"","format":"gguf","family":"","families":[""],"parameter_size":"","quantization_level":""}}],"object":"list","data":[{"id":"tiny","aliases":["tiny"],"tags":[],"object":"model","created":1795688094,"owned_by":"llamacpp","meta":{"vocab_type":true,"n_vocab":32000,"n_ctx":16384,"n_ctx_train":32768,"n_embd":512,"n_params":57942528,"size":115902464,"ftype":"F16"}}]}',
  slotShort: '{"id":0,"n_ctx":16384,"speculative":false,"is_processing":false}',
  slotLong: `{"id":3,"n_ctx":16384,"speculative":false,"is_processing":false,"id_task":1688,"n_prompt_tokens":23,"n_prompt_tokens_processed":0,"n_prompt_tokens_cache":0,"params":${PARAMS},"next_token":[{"has_next_token":false,"has_new_line":false,"n_remain":-1,"n_decoded":0}]}`,
  chat: '{"choices":[{"finish_reason":"length","index":0,"message":{"role":"assistant","content":" Alfredzna Alfredzna Alfredzna Alfredzna"}}],"created":1795688094,"model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion","usage":{"completion_tokens":8,"prompt_tokens":57,"total_tokens":65,"prompt_tokens_details":{"cached_tokens":0}},"id":"chatcmpl-bXjBsNey4KUyIrrE8i9ra53Je8DeUHaC","timings":{"cache_n":0,"prompt_n":57,"prompt_ms":36.592,"prompt_per_token_ms":0.6419649122807017,"prompt_per_second":1557.7175338871884,"predicted_n":8,"predicted_ms":27.291,"predicted_per_token_ms":3.8987142857142856,"predicted_per_second":256.4948151405225}}',
  streamRole:
    '{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1795688094,"id":"chatcmpl-UX0vzU0lpClXNQhhrrMV4FDlQlC7St6E","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}',
  streamToken:
    '{"choices":[{"finish_reason":null,"index":0,"delta":{"content":" expert"}}],"created":1795688094,"id":"chatcmpl-UX0vzU0lpClXNQhhrrMV4FDlQlC7St6E","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}',
  streamFinish:
    '{"choices":[{"finish_reason":"length","index":0,"delta":{}}],"created":1795688094,"id":"chatcmpl-UX0vzU0lpClXNQhhrrMV4FDlQlC7St6E","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk","timings":{"cache_n":8,"prompt_n":28,"prompt_ms":16.933,"prompt_per_token_ms":0.60475,"prompt_per_second":1653.5758577924762,"predicted_n":3,"predicted_ms":8.731,"predicted_per_token_ms":4.3655,"predicted_per_second":229.0688351849731}}',
  usageFinish:
    '{"choices":[{"finish_reason":"length","index":0,"delta":{}}],"created":1795688094,"id":"chatcmpl-RORv2nnXYtfKmDqFotlOp3C0aVonYjGC","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}',
  usageChunk:
    '{"choices":[],"created":1795688094,"id":"chatcmpl-RORv2nnXYtfKmDqFotlOp3C0aVonYjGC","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk","usage":{"completion_tokens":3,"prompt_tokens":36,"total_tokens":39,"prompt_tokens_details":{"cached_tokens":35}},"timings":{"cache_n":35,"prompt_n":1,"prompt_ms":5.233,"prompt_per_token_ms":5.233,"prompt_per_second":191.0949742021785,"predicted_n":3,"predicted_ms":6.771,"predicted_per_token_ms":3.3855,"predicted_per_second":295.3773445576724}}',
};

/** Keys (in order) and value types, recursively; arrays by their first element. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])];
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return v === null ? 'null' : typeof v;
}

function assertLike(actual: unknown, captured: string): void {
  assert.deepEqual(shape(actual), shape(JSON.parse(captured)));
}

function assertLlamaHeaders(res: RawResponse, contentType: string): void {
  assert.equal(res.headers.server, 'llama.cpp');
  assert.equal(res.headers['content-type'], contentType);
  assert.equal(res.headers['keep-alive'], 'timeout=5, max=100');
  assert.equal(res.headers['access-control-allow-origin'], '');
  assert.equal(res.headers.date, undefined);
}

describe('sim conformance with the llama-server captures', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSimulator({ mode: 'llama-server', models: [{ id: 'tiny', nSlots: 4 }], cost: { timeScale: 0 } });
  });
  after(() => sim.close());

  it('GET /health', async () => {
    const res = await request(sim.url, '/health');
    assert.equal(res.status, 200);
    assert.equal(res.body, '{"status":"ok"}');
    assertLlamaHeaders(res, 'application/json; charset=utf-8');
    assert.equal(res.headers['content-length'], '15');
  });

  it('GET /v1/models and /models', async () => {
    for (const path of ['/v1/models', '/models']) {
      const res = await request(sim.url, path);
      assertLike(res.json(), CAPTURE.models);
      assert.equal(res.json().data[0].id, 'tiny');
    }
  });

  it('GET /v1/models reports the model path when there is no alias', async () => {
    const noAlias = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'm', alias: null, path: '/x/m.gguf' }],
      cost: { timeScale: 0 },
    });
    try {
      const body = (await request(noAlias.url, '/v1/models')).json();
      assert.equal(body.data[0].id, '/x/m.gguf');
      assert.deepEqual(body.data[0].aliases, []);
    } finally {
      await noAlias.close();
    }
  });

  it('GET /props', async () => {
    const body = (await request(sim.url, '/props')).json();
    assertLike(body, CAPTURE.props);
    assert.equal(body.total_slots, 4);
    assert.equal(body.model_alias, 'tiny');
    assert.equal(body.model_path, '/models/tiny.gguf');
    assert.equal(body.default_generation_settings.n_ctx, 16384);
  });

  it('GET /slots: short form for unused slots, long form after a task', async () => {
    const fresh = (await request(sim.url, '/slots')).json() as unknown[];
    assert.equal(fresh.length, 4);
    for (const s of fresh) assertLike(s, CAPTURE.slotShort);
    await postJson(sim.url, '/v1/chat/completions', chatBody('fill slot three', { max_tokens: 2, id_slot: 3 }));
    const after = (await request(sim.url, '/slots')).json() as Record<string, unknown>[];
    assertLike(after[0], CAPTURE.slotShort);
    assertLike(after[3], CAPTURE.slotLong);
    assert.equal(after[3]!.is_processing, false);
  });

  it('POST /v1/chat/completions (and /chat/completions) non-streaming', async () => {
    for (const path of ['/v1/chat/completions', '/chat/completions']) {
      const res = await postJson(sim.url, path, chatBody('Hello there', { max_tokens: 8 }));
      assert.equal(res.status, 200);
      assertLlamaHeaders(res, 'application/json; charset=utf-8');
      const body = res.json();
      assertLike(body, CAPTURE.chat);
      assert.match(body.id, /^chatcmpl-[A-Za-z0-9]{32}$/);
      assert.equal(body.usage.prompt_tokens, body.timings.cache_n + body.timings.prompt_n);
      assert.equal(body.usage.prompt_tokens_details.cached_tokens, body.timings.cache_n);
      assert.equal(body.timings.predicted_n, 8);
      assert.equal(body.choices[0].finish_reason, 'length');
    }
  });

  it("a chat's n_predict wins over its max_tokens, as on the real server", async () => {
    const res = await postJson(
      sim.url,
      '/v1/chat/completions',
      chatBody('say nothing', { max_tokens: 8, n_predict: 2 }),
    );
    assert.equal(res.json().timings.predicted_n, 2);
  });

  it('streams like chat_stream.txt', async () => {
    const res = await postJson(sim.url, '/v1/chat/completions', chatBody('stream me', { max_tokens: 3, stream: true }));
    assert.equal(res.status, 200);
    assertLlamaHeaders(res, 'text/event-stream');
    assert.equal(res.headers['x-accel-buffering'], 'no');
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.doesNotMatch(res.body, /^event:/m);
    const data = sseData(res.body);
    assert.equal(data.length, 6);
    assertLike(JSON.parse(data[0]!), CAPTURE.streamRole);
    for (const d of data.slice(1, 4)) assertLike(JSON.parse(d), CAPTURE.streamToken);
    assertLike(JSON.parse(data[4]!), CAPTURE.streamFinish);
    assert.equal(data[5], '[DONE]');
    assert.ok(res.body.endsWith('data: [DONE]\n\n'));
  });

  it('streams with include_usage like chat_stream_usage.txt', async () => {
    const body = chatBody('stream me with usage', {
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    const data = sseData((await postJson(sim.url, '/v1/chat/completions', body)).body);
    assert.equal(data.length, 7);
    assertLike(JSON.parse(data[4]!), CAPTURE.usageFinish);
    assertLike(JSON.parse(data[5]!), CAPTURE.usageChunk);
    assert.equal(data[6], '[DONE]');
  });

  it('answers the same prompt with the same words', async () => {
    const a = (await postJson(sim.url, '/v1/chat/completions', chatBody('determinism', { max_tokens: 5 }))).json();
    const b = (
      await postJson(sim.url, '/v1/chat/completions', chatBody('determinism', { max_tokens: 5, stream: false }))
    ).json();
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    const c = (await postJson(sim.url, '/v1/chat/completions', chatBody('determinism'))).json();
    assert.equal(c.timings.predicted_n, 16);
    assert.equal(c.choices[0].finish_reason, 'stop');
  });

  it('validates chat bodies like the real server', async () => {
    const oops = await postJson(sim.url, '/v1/chat/completions', { messages: 'oops' });
    assert.equal(oops.status, 400);
    assert.equal(
      oops.body,
      '{"error":{"code":400,"message":"Expected \'messages\' to be an array","type":"invalid_request_error"}}',
    );
    const bad = await postJson(sim.url, '/v1/chat/completions', '{not json');
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.type, 'invalid_request_error');
    assert.match(bad.json().error.message, /^\[json\.exception\.parse_error\.101\]/);
  });

  // The answers of the real binary to the same bodies (test-real/error-parity runs the whole list on both).
  it('refuses what the real server refuses, with its status and message', async () => {
    const cases: Array<[string, unknown, number, string]> = [
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user' }] },
        400,
        "All non-assistant messages must contain 'content'",
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 5 }] },
        400,
        "Expected 'content' to be a string or an array",
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: [{ type: 'text' }] }] },
        500,
        "Failed to parse messages: [json.exception.out_of_range.403] key 'text' not found",
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], max_tokens: 'a' },
        400,
        "Field 'max_tokens': [json.exception.type_error.302] type must be number, but is string",
      ],
      [
        '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'x' }], n_predict: -5 },
        400,
        "Field 'n_predict': Value must be between -1 <= value <= 2147483647, but got -5",
      ],
      [
        '/v1/messages',
        { messages: [{ role: 'user' }], max_tokens: 2 },
        400,
        "All non-assistant messages must contain 'content'",
      ],
      ['/completion', { prompt: [] }, 400, '"prompt" must not be empty'],
      ['/completion', { prompt: [-1] }, 400, 'Prompt contains invalid tokens'],
      ['/v1/responses', { input: [{ role: 'tool', content: 'x' }] }, 400, "Cannot determine type of 'item'"],
      [
        '/v1/responses',
        { input: 'x', previous_response_id: 'r' },
        400,
        "llama.cpp does not support 'previous_response_id'.",
      ],
    ];
    for (const [path, body, status, message] of cases) {
      const res = await postJson(sim.url, path, body);
      assert.equal(res.status, status, `${path} ${JSON.stringify(body)}`);
      assert.equal(res.json().error.message, message);
    }
    const mixed = await postJson(sim.url, '/completion', { prompt: ['ab', 5, 6], n_predict: 1 });
    assert.equal(mixed.status, 200, 'a list of strings and token ids is one prompt');
  });

  it('refuses prompts longer than the context', async () => {
    const small = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 's', nCtx: 32 }],
      cost: { timeScale: 0 },
    });
    try {
      const res = await postJson(small.url, '/v1/chat/completions', chatBody('word '.repeat(100)));
      assert.equal(res.status, 400);
      assert.equal(res.json().error.type, 'exceed_context_size_error');
      assert.equal(res.json().error.n_ctx, 32);
    } finally {
      await small.close();
    }
  });

  it('/tokenize, /detokenize, /apply-template, input_tokens like tokenize_template.txt', async () => {
    const plain = (await postJson(sim.url, '/tokenize', { content: 'Hello world <|im_start|>' })).json();
    assert.ok(Array.isArray(plain.tokens) && plain.tokens.every((t: unknown) => typeof t === 'number'));
    const pieces = (
      await postJson(sim.url, '/tokenize', { content: 'Hello world', add_special: true, with_pieces: true })
    ).json();
    assert.deepEqual(
      pieces.tokens.map((t: { piece: string }) => t.piece),
      ['<s>', 'Hello', ' world'],
    );
    assert.deepEqual(pieces.tokens[0], { id: 1, piece: '<s>' });
    const ids = pieces.tokens.map((t: { id: number }) => t.id);
    assert.deepEqual((await postJson(sim.url, '/detokenize', { tokens: ids })).json(), { content: '<s>Hello world' });
    const messages = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Hi' },
    ];
    assert.deepEqual((await postJson(sim.url, '/apply-template', { messages })).json(), {
      prompt: '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    });
    // A last assistant message is continued (assistant prefill), as the real server renders it.
    const prefilled = [...messages, { role: 'assistant', content: 'Hello the' }];
    assert.deepEqual((await postJson(sim.url, '/apply-template', { messages: prefilled })).json(), {
      prompt: '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello the',
    });
    const input = (
      await postJson(sim.url, '/v1/chat/completions/input_tokens', { messages: [{ role: 'user', content: 'Hi' }] })
    ).json();
    assert.deepEqual(Object.keys(input), ['input_tokens', 'object']);
    assert.equal(input.object, 'response.input_tokens');
  });

  it('404s unknown paths with the File Not Found body', async () => {
    for (const [method, path] of [
      ['GET', '/upstream/tiny/slots'],
      ['POST', '/nothing'],
      ['GET', '/slots/0'],
    ]) {
      const res = await request(sim.url, path!, { method, body: method === 'POST' ? {} : undefined });
      assert.equal(res.status, 404);
      assert.equal(res.body, '{"error":{"message":"File Not Found","type":"not_found_error","code":404}}');
    }
  });

  it('answers 503 Loading model while the model loads (restart)', async () => {
    const slow = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'x' }],
      cost: { timeScale: 1, modelLoadMs: 300 },
    });
    try {
      const restarting = slow.restart();
      const res = await request(slow.url, '/health');
      assert.equal(res.status, 503);
      assert.equal(res.body, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}');
      await restarting;
      assert.equal((await request(slow.url, '/health')).status, 200);
    } finally {
      await slow.close();
    }
  });

  it('answers GET /slots with 501 when started with --no-slots', async () => {
    const noSlots = await startSimulator({
      mode: 'llama-server',
      models: [{ id: 'x' }],
      noSlots: true,
      cost: { timeScale: 0 },
    });
    try {
      const res = await request(noSlots.url, '/slots');
      assert.equal(res.status, 501);
      assert.equal(res.json().error.type, 'not_supported_error');
    } finally {
      await noSlots.close();
    }
  });
});
