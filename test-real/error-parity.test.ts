/**
 * Bad requests answered alike by the real llama-server and the simulator: the same status and the same error (type
 * and message), or both a success. The proxy forwards what it does not check itself, so the integration tests see
 * the backend's answers to bad input through the simulator: they are only as right as it is.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { locateLlamaServer } from '../test/support/real-server.js';
import { startTarget, type Target } from '../test/support/server-target.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

const user = (content: unknown) => ({ messages: [{ role: 'user', content }], max_tokens: 2 });
const chat = (extra: Record<string, unknown>) => ({ ...user('x'), ...extra });
const responses = (input: unknown, extra: Record<string, unknown> = {}) => ({ input, max_output_tokens: 2, ...extra });

/** [path, body]: each a mistake a client makes, or a body on the edge of what the server takes. */
const REQUESTS: Array<[string, Record<string, unknown>?]> = [
  ['/metrics'], // started without --metrics
  ['/v1/chat/completions', { messages: [{ role: 'user' }], max_tokens: 2 }],
  ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }, { role: 'assistant' }], max_tokens: 2 }],
  ['/v1/chat/completions', user(5)],
  ['/v1/chat/completions', user({ a: 1 })],
  ['/v1/chat/completions', user(null)],
  ['/v1/chat/completions', user([{ type: 'foo', text: 'a' }])],
  ['/v1/chat/completions', user([{ type: 'text' }])],
  ['/v1/chat/completions', user([{ type: 'text', text: 5 }])],
  ['/v1/chat/completions', user([{ type: 'image_url', image_url: { url: 'data:x' } }])],
  ['/v1/chat/completions', user([{ type: 'input_audio' }])],
  ['/v1/chat/completions', chat({ max_tokens: 'a' })],
  ['/v1/chat/completions', chat({ n_predict: 'a' })],
  ['/v1/chat/completions', chat({ temperature: [1] })],
  ['/v1/chat/completions', chat({ n_keep: {} })],
  ['/v1/chat/completions', chat({ top_p: true })],
  ['/v1/chat/completions', chat({ max_tokens: null })],
  ['/v1/chat/completions', chat({ cache_prompt: 'no' })],
  ['/v1/chat/completions', chat({ id_slot: 'a' })],
  ['/v1/chat/completions', chat({ max_tokens: -5 })],
  ['/v1/chat/completions', chat({ n_keep: -2 })],
  ['/v1/messages', { messages: [{ role: 'user', content: 'x' }], max_tokens: 'a' }],
  ['/v1/messages', { messages: [{ role: 'user' }], max_tokens: 2 }],
  ['/v1/messages', { messages: [{ role: 'user', content: 'x' }, { role: 'assistant' }], max_tokens: 2 }],
  ['/v1/messages', { messages: [{ role: 'user', content: 5 }], max_tokens: 2 }],
  ['/v1/messages', { messages: [{ role: 'user', content: [{ type: 'text' }] }], max_tokens: 2 }],
  [
    '/v1/messages',
    { messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64' } }] }], max_tokens: 2 },
  ],
  ['/v1/messages', { messages: [{ role: 'user', content: 'x' }], max_tokens: 2, stream: 'yes' }],
  ['/v1/messages', { max_tokens: 2 }],
  ['/v1/messages/count_tokens', { messages: [{ role: 'user', content: 5 }] }],
  ['/infill', { input_prefix: 'a', input_suffix: 'b', input_extra: [5], n_predict: 1 }],
  ['/infill', { input_prefix: 'a', input_suffix: 'b', input_extra: [{ text: 'x', filename: 5 }], n_predict: 1 }],
  ['/infill', { input_prefix: 'a', input_suffix: 'b', input_extra: 'x', n_predict: 1 }],
  ['/infill', { input_prefix: 'a', input_suffix: 'b', n_predict: -3 }],
  ['/completion', { prompt: [], n_predict: 1 }],
  ['/completion', { prompt: [-1], n_predict: 1 }],
  ['/completion', { prompt: [32003], n_predict: 1 }],
  ['/completion', { prompt: [[5, 6]], n_predict: 1 }],
  ['/completion', { prompt: ['ab'], n_predict: 1 }],
  ['/completion', { prompt: ['ab', 5, 6], n_predict: 1 }],
  ['/completion', { prompt: { prompt: 'x' }, n_predict: 1 }],
  ['/completion', { prompt: 'x', n_predict: 'a' }],
  ['/v1/completions', { prompt: 'x', max_tokens: 'a' }],
  [
    '/v1/responses',
    responses([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'x' },
    ]),
  ],
  [
    '/v1/responses',
    responses([
      { type: 'message', role: 'assistant', content: 'x' },
      { role: 'user', content: 'y' },
    ]),
  ],
  ['/v1/responses', responses([{ role: 'user', content: [{ type: 'output_text', text: 'x' }] }])],
  ['/v1/responses', responses([{ role: 'user', content: 5 }])],
  ['/v1/responses', responses([{ role: 'tool', content: 'x' }])],
  ['/v1/responses', responses([{ type: 'function_call', name: 'f', arguments: '{}' }])],
  ['/v1/responses', responses([{ type: 'function_call_output', output: 'x' }])],
  ['/v1/responses', responses('x', { previous_response_id: 'resp_1' })],
  ['/tokenize', { content: 5 }],
  ['/tokenize', { content: null }],
  ['/tokenize', { content: ['a'] }],
  ['/detokenize', { tokens: ['a'] }],
  ['/detokenize', { tokens: 5 }],
  ['/detokenize', { tokens: [1.5] }],
];

/** Status and, for an error, its type and message; a success as `ok`. A GET without a body. */
async function answer(url: string, path: string, body?: unknown): Promise<string> {
  const res = await fetch(`${url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const json = (await res.json()) as { error?: { type?: string; message?: string } };
  return res.ok ? `${res.status} ok` : `${res.status} ${json.error?.type}: ${json.error?.message}`;
}

describe('bad requests: the simulator answers as the real llama-server does', { skip }, () => {
  let real: Target;
  let sim: Target;
  before(async () => {
    if ('skip' in where) return;
    real = await startTarget('llama-server', 2);
    sim = await startTarget('simulator', 2);
  });
  after(async () => {
    await real?.close();
    await sim?.close();
  });

  it('the same status and error for every request of the list', async () => {
    const differ: string[] = [];
    for (const [path, body] of REQUESTS) {
      const [fromReal, fromSim] = [await answer(real.url, path, body), await answer(sim.url, path, body)];
      if (fromReal !== fromSim) differ.push(`${path} ${JSON.stringify(body)}\n  real: ${fromReal}\n  sim:  ${fromSim}`);
    }
    assert.deepEqual(differ, []);
  });
});
