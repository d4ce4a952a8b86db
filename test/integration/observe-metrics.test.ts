/**
 * GET /metrics over real HTTP with the simulator: the counters move as the traffic does (requests by outcome, saves
 * and restores with their failures, tokens, HTTP requests by route and API), the state gauges say what the slots and
 * the index hold, and each backend's own metrics stay reachable under /metrics/backends/{index}.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { chat, continued, keyOf, opening } from '../support/cache.js';
import { parseProm, valueOf } from '../support/prom-text.js';
import type { Sample } from '../support/prom-text.js';
import { api } from '../support/proxycache-api.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';

async function scrape(stack: Stack): Promise<Sample[]> {
  const res = await api(stack.url, 'GET', '/metrics');
  assert.equal(res.status, 200);
  assert.match(String(res.headers.get('content-type')), /^text\/plain; version=0\.0\.4/);
  return parseProm(res.body as string);
}

describe('GET /metrics', { timeout: 60_000 }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => stack?.close());

  it('counts requests by outcome, saves and restores (with failures by reason), tokens and HTTP requests', async () => {
    const before = await scrape(stack);
    const a = opening(601);
    const first = await chat(stack, a);
    await chat(stack, opening(602));
    await chat(stack, opening(603));
    const back = await chat(stack, continued(a, first.content, 604));
    assert.equal(back.line.decision, 'restore');
    // A file deleted behind the proxy: the next restore of it fails (and the request still answers).
    const b = opening(602);
    await rm(join(stack.cacheDir, keyOf(b)));
    const lost = await chat(stack, continued(b, 'whatever', 605));
    assert.equal(lost.line.decision, 'restore');
    assert.equal(lost.line.restore.ok, false);
    const m = await scrape(stack);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(m, name, labels) - valueOf(before, name, labels);

    assert.equal(delta('proxycache_chat_requests_total', { outcome: 'cold' }), 3);
    assert.equal(delta('proxycache_chat_requests_total', { outcome: 'restored' }), 2);
    assert.equal(
      delta('proxycache_cache_operations_total', { action: 'save', result: 'ok' }),
      5,
      'SAVE_POLICY=always: one save per big answer',
    );
    assert.equal(delta('proxycache_cache_operations_total', { action: 'restore', result: 'ok' }), 1);
    assert.equal(delta('proxycache_cache_operations_total', { action: 'restore', result: 'failed' }), 1);
    assert.equal(delta('proxycache_cache_operation_failures_total', { action: 'restore', reason: 'http_400' }), 1);
    assert.equal(delta('proxycache_cache_operation_duration_seconds_count', { action: 'save' }), 5);
    assert.ok(delta('proxycache_cache_operation_bytes_total', { action: 'save' }) > 0);
    assert.equal(delta('proxycache_cache_operation_bytes_total', { action: 'restore' }), back.line.restore.bytes);
    assert.equal(
      delta('proxycache_prompt_tokens_reused_total'),
      first.timings.cache_n +
        back.timings.cache_n +
        lost.timings.cache_n +
        // the two fillers
        (await api(stack.url, 'GET', '/proxycache/requests?limit=5')).body.requests
          .slice(2, 4)
          .reduce((n: number, r: any) => n + r.cache_n, 0),
    );
    assert.ok(delta('proxycache_prompt_tokens_prefilled_total') > delta('proxycache_prompt_tokens_reused_total'));
    assert.equal(delta('proxycache_slot_wait_seconds_count'), 5);
    assert.equal(
      delta('proxycache_http_requests_total', { route: '/v1/chat/completions', api: 'chat', status: '200' }),
      5,
    );
  });

  it('gauges say what the slots, the index and the backends are now', async () => {
    const m = await scrape(stack);
    const sim = stack.sim.url;
    assert.equal(valueOf(m, 'proxycache_slots', { backend: sim }), 2);
    assert.equal(valueOf(m, 'proxycache_slots_busy', { backend: sim }), 0);
    assert.equal(valueOf(m, 'proxycache_slots_big_content', { backend: sim }), 2);
    assert.equal(valueOf(m, 'proxycache_slots_unsaved', { backend: sim }), 0, 'SAVE_POLICY=always saved every answer');
    const status = (await api(stack.url, 'GET', '/proxycache/status')).body;
    assert.equal(valueOf(m, 'proxycache_cache_entries'), status.cache.entries);
    assert.equal(valueOf(m, 'proxycache_cache_entry_bytes'), status.cache.bytes);
    assert.equal(valueOf(m, 'proxycache_backend_up', { backend: sim }), 1);
    assert.equal(valueOf(m, 'proxycache_backend_info', { backend: sim, kind: 'llama-server' }), 1);
    assert.equal(valueOf(m, 'proxycache_cleanup_runs_total'), 1, 'the cleanup run at start-up');
    assert.equal(valueOf(m, 'proxycache_cache_dir_files'), 0, 'the directory was empty at start-up');
    assert.ok(
      m.some((s) => s.name === 'process_resident_memory_bytes'),
      'process metrics are there',
    );
  });

  it("labels every generation route's HTTP requests with its API", async () => {
    const before = await scrape(stack);
    const anthropic = new Anthropic({ baseURL: stack.url, apiKey: 'unused', maxRetries: 0 });
    await anthropic.messages.create({ model: 'tiny', max_tokens: 2, messages: [{ role: 'user', content: 'hello' }] });
    await stack.openai.responses.create({ model: 'tiny', input: 'hello', max_output_tokens: 2 });
    await stack.openai.completions.create({ model: 'tiny', prompt: 'hello', max_tokens: 2 });
    const infill = await postJson(stack.url, '/infill', { input_prefix: 'def f(', input_suffix: ')', n_predict: 2 });
    assert.equal(infill.status, 200);
    const m = await scrape(stack);
    const delta = (route: string, apiLabel: string) =>
      valueOf(m, 'proxycache_http_requests_total', { route, api: apiLabel, status: '200' }) -
      valueOf(before, 'proxycache_http_requests_total', { route, api: apiLabel, status: '200' });
    assert.equal(delta('/v1/messages', 'messages'), 1);
    assert.equal(delta('/v1/responses', 'responses'), 1);
    assert.equal(delta('/v1/completions', 'completion'), 1);
    assert.equal(delta('/infill', 'infill'), 1);
    assert.ok(!m.some((s) => s.name === 'proxycache_http_requests_total' && s.labels.api === 'other'));
    // The request list names them the same way.
    const listed = (await api(stack.url, 'GET', '/proxycache/requests?limit=4')).body.requests;
    assert.deepEqual(
      listed.map((r: { api: string }) => r.api),
      ['infill', 'completion', 'responses', 'messages'],
    );
  });

  it("each backend's own metrics are passed through at /metrics/backends/{index}", async () => {
    // A second backend that serves its own /metrics (the simulator has none).
    const backendMetrics: Server = createServer((req, res) => {
      if (req.url === '/metrics')
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('llamacpp:prompt_tokens_total 1234\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => backendMetrics.listen(0, '127.0.0.1', resolve));
    after(() => new Promise((resolve) => backendMetrics.close(resolve)));
    const port = (backendMetrics.address() as AddressInfo).port;
    await stack.restartProxy({
      BACKENDS: JSON.stringify([
        { url: stack.sim.url },
        { url: `http://127.0.0.1:${port}`, type: 'llama-server', n_slots: 1 },
      ]),
    });
    const own = await api(stack.url, 'GET', '/metrics/backends/1');
    assert.equal(own.status, 200);
    assert.equal(own.body, 'llamacpp:prompt_tokens_total 1234\n');
    for (const bad of ['2', 'x', '-1']) {
      const res = await api(stack.url, 'GET', `/metrics/backends/${bad}`);
      assert.equal(res.status, 404, bad);
      assert.equal(res.body.error.code, 'not_found');
    }
  });
});
