/**
 * The admin API under /proxycache/ over real HTTP with the simulator: deleting an entry (file, meta, index entry),
 * running cleanup, saving every unsaved slot, erasing a slot, and bad keys and slots refused in the OpenAI error shape.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chat, continued, exists, keyOf, metaPath, MODEL, opening } from '../support/cache.js';
import { parseProm, valueOf } from '../support/prom-text.js';
import { api, rawApi } from '../support/proxycache-api.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';

function assertOpenAiError(body: any, code: string): void {
  assert.equal(typeof body?.error?.message, 'string', JSON.stringify(body));
  assert.equal(body.error.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.type, 'string');
}

async function slotOf(stack: Stack, key: string): Promise<any> {
  const status = (await api(stack.url, 'GET', '/proxycache/status')).body;
  return status.slots.find((s: any) => s.content?.key === key.slice(0, 16));
}

describe('admin API', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('DELETE /proxycache/entries/{key} removes the cache file, the meta file and the index entry; a slot still holding it saves it again before it is overwritten', async () => {
    stack = await startStack({ sim: { models: [{ id: MODEL, nSlots: 1 }] } });
    const a = opening(701);
    await chat(stack, a);
    const key = keyOf(a);
    assert.ok(await exists(join(stack.cacheDir, key)));
    assert.equal((await slotOf(stack, key)).content.saved, true);

    const res = await api(stack.url, 'DELETE', `/proxycache/entries/${key}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { deleted: key, file_removed: true, meta_removed: true });
    assert.equal(await exists(join(stack.cacheDir, key)), false, 'cache file gone');
    assert.equal(await exists(metaPath(stack.metaDir, key)), false, 'meta file gone');
    const entries = (await api(stack.url, 'GET', '/proxycache/entries')).body.entries;
    assert.equal(
      entries.some((e: any) => e.key === key),
      false,
      'index entry gone',
    );
    assert.equal(
      (await slotOf(stack, key)).content.saved,
      false,
      'the slot that still holds it no longer has it on disk',
    );

    const again = await api(stack.url, 'DELETE', `/proxycache/entries/${key}`);
    assert.equal(again.status, 404);
    assertOpenAiError(again.body, 'entry_not_found');

    // The only slot goes to another conversation: what it held is not on disk any more, so it is saved first.
    const other = await chat(stack, opening(702));
    assert.equal(other.line.evict_save?.ok, true, JSON.stringify(other.line));
    assert.ok(await exists(join(stack.cacheDir, key)), 'saved again before being overwritten');
  });

  it('malformed keys get 400 and never reach a path outside the cache directory; unknown keys get 404', async () => {
    stack = await startStack();
    const outside = join(stack.cacheDir, '..', 'outside.txt');
    await writeFile(outside, 'keep me');
    for (const bad of [
      '..%2Foutside.txt',
      '%2E%2E',
      '.hidden',
      'a%20b',
      'x'.repeat(201),
      '..%5C..%5Cwin',
      '..%2F..%2Fkv_meta',
      'a/b',
      '',
    ]) {
      const res = await rawApi(stack.url, 'DELETE', `/proxycache/entries/${bad}`);
      assert.equal(res.status, 400, `${bad}: ${JSON.stringify(res.body)}`);
      assertOpenAiError(res.body, 'invalid_request');
      assert.equal(res.body.error.param, 'key');
    }
    assert.ok(await exists(outside), 'the file outside the cache directory is untouched');
    const unknown = await api(stack.url, 'DELETE', `/proxycache/entries/${'0'.repeat(64)}`);
    assert.equal(unknown.status, 404);
    assertOpenAiError(unknown.body, 'entry_not_found');
  });

  it('POST /proxycache/cleanup runs the cleanup now and answers its stats', async () => {
    stack = await startStack({ env: { CACHE_MAX_SIZE_GB: String(150_000 / 1024 ** 3) } });
    for (let i = 0; i < 3; i++) await chat(stack, opening(710 + i));
    const files = (await readdir(stack.cacheDir)).length;
    assert.equal(files, 3);
    const res = await api(stack.url, 'POST', '/proxycache/cleanup');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.deletedBySize >= 1, JSON.stringify(res.body));
    assert.equal(res.body.remainingFiles, files - res.body.deletedBySize);
    assert.equal((await readdir(stack.cacheDir)).length, res.body.remainingFiles);
    const metrics = parseProm((await api(stack.url, 'GET', '/metrics')).body);
    assert.equal(
      valueOf(metrics, 'proxycache_cleanup_deleted_files_total', { reason: 'size' }),
      res.body.deletedBySize,
    );
    assert.equal(valueOf(metrics, 'proxycache_cache_dir_files'), res.body.remainingFiles);
  });

  it('POST /proxycache/save saves every unsaved slot now (smart policy, no write-behind)', async () => {
    stack = await startStack({ env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '0' } });
    const a = opening(721);
    const b = opening(722);
    await chat(stack, a);
    await chat(stack, b);
    assert.equal((await slotOf(stack, keyOf(a))).content.saved, false, 'smart saves nothing after an answer');
    const before = parseProm((await api(stack.url, 'GET', '/metrics')).body);

    const res = await api(stack.url, 'POST', '/proxycache/save');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.saves.length, 2);
    for (const save of res.body.saves) {
      assert.equal(save.ok, true, JSON.stringify(save));
      assert.equal(save.model, MODEL);
      assert.ok(save.tokens > 0 && save.bytes > 0);
    }
    assert.deepEqual(
      res.body.saves.map((s: any) => s.key).sort(),
      [keyOf(a), keyOf(b)].map((k) => k.slice(0, 16)).sort(),
    );
    assert.equal((await slotOf(stack, keyOf(a))).content.saved, true);
    assert.ok(await exists(join(stack.cacheDir, keyOf(b))));
    const after = parseProm((await api(stack.url, 'GET', '/metrics')).body);
    const saves = { action: 'save', result: 'ok' };
    assert.equal(
      valueOf(after, 'proxycache_cache_operations_total', saves) -
        valueOf(before, 'proxycache_cache_operations_total', saves),
      2,
    );
    assert.equal(valueOf(after, 'proxycache_slots_unsaved'), 0);

    const nothing = await api(stack.url, 'POST', '/proxycache/save');
    assert.deepEqual(nothing.body, { saves: [], from_ram_cache: { saved: 0, not_saved: 0 } }, 'nothing left to save');
  });

  it('POST /proxycache/slots/{backend}/{id}/erase empties the slot on the backend and makes the proxy forget it', async () => {
    stack = await startStack();
    const a = opening(731);
    const first = await chat(stack, a);
    const slot = first.line.slot as number;
    assert.ok((stack.sim.slotTokens(MODEL, slot) ?? []).length > 0);

    const res = await api(stack.url, 'POST', `/proxycache/slots/0/${slot}/erase`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.erased, true);
    assert.deepEqual(stack.sim.slotTokens(MODEL, slot), [], 'the backend slot is empty');
    assert.equal(await slotOf(stack, keyOf(a)), undefined, 'no slot is believed to hold it');
    const back = await chat(stack, continued(a, first.content, 732));
    assert.equal(back.line.decision, 'restore', 'restored from disk, not trusted to be resident');

    for (const [path, code] of [
      ['/proxycache/slots/1/0/erase', 'backend_not_found'],
      ['/proxycache/slots/0/9/erase', 'slot_not_found'],
      ['/proxycache/slots/x/0/erase', 'backend_not_found'],
    ] as const) {
      const bad = await api(stack.url, 'POST', path);
      assert.equal(bad.status, 404, path);
      assertOpenAiError(bad.body, code);
    }
  });
});
