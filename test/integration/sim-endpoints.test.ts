/**
 * The simulator's `/v1/messages`, `/completion` and `/v1/completions` against answers captured from the real
 * llama-server (/work/shared/llama-server, commit 3f545bec, tiny-chat.gguf; ids and dates as captured, texts are
 * the model's gibberish): same keys in the same order, same value types, same SSE framing, and the same slot
 * choice — `/completion` and `/v1/completions` honour `id_slot`, `/v1/messages` ignores it (the real log said
 * "selected slot by LRU" for a request with `"id_slot":1`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { startSimulator, type SimHandle } from '../../src/sim/index.js';
import { postJson, sseData } from '../../src/sim/sim-client.js';

const SETTINGS =
  '{"seed":4294967295,"temperature":0.0,"dynatemp_range":0.0,"dynatemp_exponent":1.0,"top_k":40,"top_p":0.949999988079071,"min_p":0.05000000074505806,"top_n_sigma":-1.0,"xtc_probability":0.0,"xtc_threshold":0.10000000149011612,"typical_p":1.0,"repeat_last_n":64,"repeat_penalty":1.0,"presence_penalty":0.0,"frequency_penalty":0.0,"dry_multiplier":0.0,"dry_base":1.75,"dry_allowed_length":2,"dry_penalty_last_n":64,"dry_sequence_breakers":["\\n",":","\\"","*"],"mirostat":0,"mirostat_tau":5.0,"mirostat_eta":0.10000000149011612,"adaptive_target":-1.0,"adaptive_decay":0.8999999761581421,"stop":[],"max_tokens":3,"n_predict":3,"n_keep":0,"n_discard":0,"ignore_eos":false,"stream":false,"logit_bias":[],"n_probs":0,"min_keep":0,"grammar":"","grammar_lazy":false,"grammar_triggers":[],"preserved_tokens":[],"chat_format":"Content-only","reasoning_format":"deepseek","reasoning_in_content":false,"generation_prompt":"","samplers":["penalties","dry","top_n_sigma","top_k","typ_p","top_p","min_p","xtc","temperature"],"speculative.types":"none","timings_per_token":false,"post_sampling_probs":false,"backend_sampling":false,"lora":[]}';
const TIMINGS =
  '{"cache_n":5,"prompt_n":1,"prompt_ms":1.136,"prompt_per_token_ms":1.136,"prompt_per_second":880.2816901408452,"predicted_n":3,"predicted_ms":1.974,"predicted_per_token_ms":0.987,"predicted_per_second":1013.1712259371834}';
const REAL = {
  message:
    '{"id":"chatcmpl-qoyFInbtO5NvscxGUC1qI0AOmS1j3Oee","type":"message","role":"assistant","content":[{"type":"text","text":"unal аль geom"}],"model":"tiny-chat","stop_reason":"max_tokens","stop_sequence":null,"usage":{"cache_read_input_tokens":0,"input_tokens":31,"output_tokens":3}}',
  messageStream: [
    [
      'message_start',
      '{"type":"message_start","message":{"id":"chatcmpl-5uU3z2FlNAEiP40vjUAPWSPKdJnXgxrH","type":"message","role":"assistant","content":[],"model":"tiny-chat","stop_reason":null,"stop_sequence":null,"usage":{"cache_read_input_tokens":8,"input_tokens":42,"output_tokens":0}}}',
    ],
    ['content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'],
    ['content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" addr"}}'],
    ['content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" print"}}'],
    ['content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" Hat"}}'],
    ['content_block_stop', '{"type":"content_block_stop","index":0}'],
    [
      'message_delta',
      '{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":3}}',
    ],
    ['message_stop', '{"type":"message_stop"}'],
  ],
  completion: `{"index":0,"content":"штаcza procedures","tokens":[],"id_slot":2,"stop":true,"model":"tiny-chat","tokens_predicted":3,"tokens_evaluated":6,"generation_settings":${SETTINGS},"prompt":"<s> Hello there friend, how","has_new_line":false,"truncated":false,"stop_type":"limit","stopping_word":"","tokens_cached":8,"timings":{"cache_n":0,"prompt_n":6,"prompt_ms":7.636,"prompt_per_token_ms":1.2726666666666666,"prompt_per_second":785.751702462022,"predicted_n":3,"predicted_ms":2.227,"predicted_per_token_ms":1.1135,"predicted_per_second":898.069151324652}}`,
  completionPartial:
    '{"index":0,"content":"шта","tokens":[17431],"stop":false,"id_slot":-1,"tokens_predicted":1,"tokens_evaluated":6}',
  v1: `{"choices":[{"text":"штаcza procedures","index":0,"logprobs":null,"finish_reason":"length"}],"created":1795984912,"model":"tiny-chat","system_fingerprint":"b0-3f545bec","object":"text_completion","usage":{"completion_tokens":3,"prompt_tokens":6,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":5}},"id":"chatcmpl-DCFJEefexRkE9foIMjf9yhoq830NcXt2","timings":${TIMINGS}}`,
  v1Chunk:
    '{"choices":[{"text":"шта","index":0,"logprobs":null,"finish_reason":null}],"created":1795984912,"model":"tiny-chat","system_fingerprint":"b0-3f545bec","object":"text_completion","id":"chatcmpl-S6eBXwSxh7dYXWU32XhnjOJZpLHtX2Fw"}',
  v1Final: `{"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"created":1795984912,"model":"tiny-chat","system_fingerprint":"b0-3f545bec","object":"text_completion","usage":{"completion_tokens":2,"prompt_tokens":6,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":5}},"id":"chatcmpl-S6eBXwSxh7dYXWU32XhnjOJZpLHtX2Fw","timings":${TIMINGS}}`,
};

/** Keys (in order) and value types, recursively; arrays by their first element. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])];
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return v === null ? 'null' : typeof v;
}
const assertLike = (actual: unknown, captured: string): void =>
  assert.deepEqual(shape(actual), shape(JSON.parse(captured)));

/** `[event, data]` of each frame of an Anthropic SSE body. */
function sseEvents(body: string): [string, string][] {
  return body
    .split('\n\n')
    .filter((f) => f !== '')
    .map((f) => {
      const m = /^event: (.*)\ndata: (.*)$/s.exec(f);
      assert.ok(m, `frame ${JSON.stringify(f)}`);
      return [m[1]!, m[2]!];
    });
}

const PROMPT = 'Hello there friend, how';
const lastChatSlot = (sim: SimHandle): number => {
  const e = sim.events.filter((x) => x.type === 'chat').at(-1);
  assert.ok(e && e.type === 'chat');
  return e.slot;
};

describe('sim /v1/messages and completions, against the real llama-server', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSimulator({ mode: 'llama-server', models: [{ id: 'tiny-chat' }], cost: { timeScale: 0 } });
  });
  after(() => sim.close());

  it('POST /v1/messages answers like the real server and ignores id_slot', async () => {
    const body = { model: 'x', max_tokens: 3, messages: [{ role: 'user', content: 'Hello there friend' }] };
    const first = await postJson(sim.url, '/v1/chat/completions', { ...body, id_slot: 1 });
    assert.equal(lastChatSlot(sim), 1);
    const res = await postJson(sim.url, '/v1/messages', { ...body, id_slot: 0 });
    assert.equal(res.status, 200);
    assertLike(res.json(), REAL.message);
    assert.equal(res.json().model, 'tiny-chat'); // the server's name, not the request's
    assert.equal(res.json().stop_reason, 'max_tokens');
    // Same conversation: similarity takes slot 1 although id_slot says 0.
    assert.equal(lastChatSlot(sim), 1);
    const usage = res.json().usage;
    assert.equal(usage.cache_read_input_tokens + usage.input_tokens, first.json().usage.prompt_tokens);
    assert.equal(usage.input_tokens, 1);
  });

  it('POST /v1/messages streams the real event sequence', async () => {
    const res = await postJson(sim.url, '/v1/messages', {
      max_tokens: 3,
      stream: true,
      system: 'Be brief.',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there friend' }] }],
    });
    assert.equal(res.headers['content-type'], 'text/event-stream');
    const events = sseEvents(res.body);
    assert.deepEqual(
      events.map((e) => e[0]),
      REAL.messageStream.map((e) => e[0]),
    );
    events.forEach(([, data], i) => assertLike(JSON.parse(data), REAL.messageStream[i]![1]!));
    assert.equal(JSON.parse(events[0]![1]).message.usage.output_tokens, 0);
  });

  it('POST /v1/messages refuses bodies like the real server (500 server_error)', async () => {
    const noMessages = await postJson(sim.url, '/v1/messages', { max_tokens: 3 });
    assert.equal(noMessages.status, 500);
    assert.deepEqual(noMessages.json(), {
      error: { code: 500, message: "'messages' is required", type: 'server_error' },
    });
    const noRole = await postJson(sim.url, '/v1/messages', { max_tokens: 1, messages: [{ content: 'x' }] });
    assert.equal(noRole.json().error.message, 'Failed to parse messages: Missing \'role\' in message: {"content":"x"}');
  });

  it('POST /completion honours id_slot and answers like the real server', async () => {
    const body = { prompt: PROMPT, n_predict: 3, temperature: 0, id_slot: 2 };
    const first = (await postJson(sim.url, '/completion', body)).json();
    assertLike(first, REAL.completion);
    assert.equal(first.id_slot, 2);
    assert.equal(lastChatSlot(sim), 2);
    assert.equal(first.tokens_evaluated, first.timings.prompt_n); // BOS included
    assert.equal(first.tokens_cached, first.tokens_evaluated + 2);
    const again = (await postJson(sim.url, '/completion', body)).json();
    assert.equal(again.timings.cache_n, again.tokens_evaluated - 1);

    const stream = await postJson(sim.url, '/completion', { ...body, n_predict: 2, stream: true });
    const frames = sseData(stream.body).map((d) => JSON.parse(d));
    assert.equal(frames.length, 3); // two tokens, then the final object; no [DONE]
    assertLike(frames[0], REAL.completionPartial);
    assertLike(frames[2], REAL.completion.replace('"stream":false', '"stream":true'));
    assert.equal(frames[2].content, '');
  });

  it('POST /v1/completions honours id_slot and answers like the real server (the OpenAI client reads it)', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const params = { model: 'x', prompt: PROMPT, max_tokens: 3, temperature: 0, id_slot: 3 };
    await client.completions.create(params as OpenAI.CompletionCreateParamsNonStreaming);
    assert.equal(lastChatSlot(sim), 3);
    const res = await postJson(sim.url, '/v1/completions', params);
    assertLike(res.json(), REAL.v1);
    assert.equal(res.json().timings.cache_n, res.json().usage.prompt_tokens - 1);

    const stream = await client.completions.create({
      ...params,
      max_tokens: 2,
      stream: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    const chunks: unknown[] = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks.length, 3);
    assertLike(chunks[0], REAL.v1Chunk);
    assertLike(chunks[2], REAL.v1Final);
    const raw = await postJson(sim.url, '/v1/completions', { ...params, stream: true });
    assert.equal(sseData(raw.body).at(-1), '[DONE]');
  });

  it('POST /completion refuses bodies like the real server', async () => {
    const noPrompt = await postJson(sim.url, '/completion', { n_predict: 1 });
    assert.equal(noPrompt.status, 400);
    assert.equal(noPrompt.json().error.message, "[json.exception.out_of_range.403] key 'prompt' not found");
    const badPrompt = await postJson(sim.url, '/v1/completions', { prompt: 5 });
    assert.equal(badPrompt.status, 400);
    assert.match(badPrompt.json().error.message, /^"prompt" elements must be a string/);
    const notJson = await postJson(sim.url, '/completion', 'nope');
    assert.equal(notJson.status, 500);
  });
});
