/**
 * The read-only status API under /proxycache/ over real HTTP with the simulator: what the proxy saw of its
 * traffic (requests with their decision, totals, per-minute history), its slots and backends, and the cache entries.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chat, continued, keyOf, MODEL, opening } from '../support/cache.js';
import { api } from '../support/proxycache-api.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';

describe('status API', { timeout: 60_000 }, () => {
  let stack: Stack;
  let restoredKey: string;
  let continuedKey: string;
  before(async () => {
    stack = await startStack();
    // A conversation evicted from both slots by two others, then continued: restored from disk.
    const a = opening(501);
    const first = await chat(stack, a);
    await chat(stack, opening(502));
    await chat(stack, opening(503));
    const conversation = continued(a, first.content, 504);
    const back = await chat(stack, conversation);
    assert.equal(back.line.decision, 'restore');
    restoredKey = keyOf(a);
    continuedKey = keyOf(conversation);
    await chat(stack, [{ role: 'user', content: 'hello there' }]);
  });
  after(async () => stack?.close());

  it('GET /proxycache/requests lists the requests newest first, the restore with decision restore and its timings', async () => {
    const res = await api(stack.url, 'GET', '/proxycache/requests');
    assert.equal(res.status, 200);
    const list = res.body.requests as Array<Record<string, any>>;
    assert.equal(list.length, 5);
    assert.deepEqual(
      list.map((r) => r.decision),
      ['small', 'restore', 'cold', 'cold', 'cold'],
    );
    assert.deepEqual(new Set(list.map((r) => r.api)), new Set(['chat']));
    const restore = list[1]!;
    assert.equal(restore.model, MODEL);
    assert.equal(restore.key.length, 16);
    assert.equal(restore.status, 200);
    assert.equal(restore.backend, stack.sim.url);
    assert.equal(typeof restore.slot, 'number');
    assert.ok(restore.cache_n > restore.prompt_n, `restore reused ${restore.cache_n}, prefilled ${restore.prompt_n}`);
    assert.equal(typeof restore.restore_ms, 'number');
    assert.equal(restore.restore_ok, true);
    assert.ok(Date.parse(restore.at) <= Date.now());
    assert.ok(Date.parse(list[0]!.at) >= Date.parse(restore.at), 'newest first');

    const two = await api(stack.url, 'GET', '/proxycache/requests?limit=2');
    assert.deepEqual(
      two.body.requests.map((r: any) => r.decision),
      ['small', 'restore'],
    );
    const bad = await api(stack.url, 'GET', '/proxycache/requests?limit=abc');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'limit');
  });

  it('GET /proxycache/status shows the backend, every slot with what it holds, the cache and the totals', async () => {
    const res = await api(stack.url, 'GET', '/proxycache/status');
    assert.equal(res.status, 200);
    const s = res.body;
    assert.match(s.version, /^\d+\.\d+\.\d+/);
    assert.equal(s.policy, 'always');
    assert.equal(typeof s.uptime_s, 'number');
    assert.equal(s.backends.length, 1);
    assert.deepEqual(
      {
        index: s.backends[0].index,
        url: s.backends[0].url,
        kind: s.backends[0].kind,
        reachable: s.backends[0].reachable,
        slot_count: s.backends[0].slot_count,
      },
      { index: 0, url: stack.sim.url, kind: 'llama-server', reachable: true, slot_count: 2 },
    );
    assert.equal(s.backends[0].loaded_models, null);
    assert.equal(typeof s.backends[0].fingerprints, 'object');
    assert.equal(s.slots.length, 2);
    const holding = s.slots.find((slot: any) => slot.content?.key === continuedKey.slice(0, 16));
    assert.ok(holding, `a slot holds the restored conversation's latest turn: ${JSON.stringify(s.slots)}`);
    assert.equal(holding.content.big, true);
    assert.equal(holding.content.saved, true, 'SAVE_POLICY=always saved it after the answer');
    assert.equal(typeof holding.content.tokens, 'number');
    assert.ok(Date.parse(holding.last_used) <= Date.now());
    assert.equal(s.cache.entries, 4);
    assert.ok(s.cache.bytes > 0);
    assert.equal(s.cache.budget_bytes, 50 * 1024 ** 3);
    assert.equal(s.cache.dir, stack.cacheDir);
    assert.ok(Date.parse(s.cache.oldest_entry) <= Date.now());
    assert.equal(s.totals.requests, 5);
    assert.equal(s.totals.hit_rate, 0.25, 'one restore among four big requests');
    assert.ok(s.totals.tokens_reused > 0 && s.totals.tokens_prefilled > s.totals.tokens_reused);
  });

  it('GET /proxycache/history has one point per minute, this minute with the tokens of the requests', async () => {
    const res = await api(stack.url, 'GET', '/proxycache/history?minutes=5');
    assert.equal(res.status, 200);
    assert.equal(res.body.bucket_s, 60);
    assert.equal(res.body.points.length, 5);
    const reused = res.body.points.reduce((n: number, p: any) => n + p.tokens_reused, 0);
    const status = (await api(stack.url, 'GET', '/proxycache/status')).body;
    assert.equal(reused, status.totals.tokens_reused);
    assert.ok(Date.parse(res.body.points[4].t) <= Date.now());
  });

  it('GET /proxycache/entries lists every cache entry with model, tokens, bytes, age and backend', async () => {
    const res = await api(stack.url, 'GET', '/proxycache/entries');
    assert.equal(res.status, 200);
    assert.equal(res.body.entries.length, 4);
    const entry = res.body.entries.find((e: any) => e.key === restoredKey);
    assert.ok(entry, 'the conversation has its entry, with the full key');
    assert.equal(entry.model, MODEL);
    assert.equal(entry.backend, stack.sim.url);
    assert.ok(entry.tokens > 0 && entry.bytes > 0 && entry.age_s >= 0);
  });

  it('an unknown path under /proxycache/ is a 404 of the proxy, not passed to the backend', async () => {
    const res = await api(stack.url, 'GET', '/proxycache/nope');
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  });
});
