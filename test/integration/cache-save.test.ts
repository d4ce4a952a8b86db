/**
 * Saving after a big request: what goes upstream, the save call, and the meta file in the seed's format, with
 * the key and block hashes recomputed here from the seed's rules (not with the proxy's code).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { chat, eventsSince, exists, metaPath, MODEL, opening, readMeta, slotFileEvents } from '../support/cache.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { closeTappedStack, startTappedStack } from '../support/tapped-stack.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** The seed's blocks: `\w+` words of the lower-cased text, 8 per block, each block's words joined by spaces. */
function seedBlocks(text: string, wpb: number): string[] {
  const all = text.toLowerCase().match(/\w+/g) ?? [];
  const blocks: string[] = [];
  for (let i = 0; i < all.length; i += wpb) blocks.push(sha256(all.slice(i, i + wpb).join(' ')));
  return blocks;
}

describe('cache save after a big request', { timeout: 60_000 }, () => {
  let stack: Stack;
  let tap: Tap;
  before(async () => {
    // Record what the proxy sends upstream.
    ({ stack, tap } = await startTappedStack());
  });
  after(() => closeTappedStack({ stack, tap }));

  it('a big request goes upstream with cache_prompt and id_slot, is saved under its key after the reply, and gets a seed-format meta', async () => {
    const messages = opening(101);
    const text = messages[0]!.content;
    const key = sha256(`${MODEL}\n${text}`);
    const simMark = stack.sim.events.length;
    const tapMark = tap.requests.length;
    const before = Date.now() / 1000;

    const res = await chat(stack, messages);

    assert.equal(res.line.big, true);
    const upstream = tap.requests.slice(tapMark).filter((r) => r.path === '/v1/chat/completions');
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0]!.body.cache_prompt, true);
    assert.equal(upstream[0]!.body.id_slot, res.line.slot);

    const events = eventsSince(stack.sim, simMark);
    const chatAt = events.findIndex((e) => e.type === 'chat');
    const saves = slotFileEvents(stack.sim, 'save', simMark);
    assert.equal(saves.length, 1, 'exactly one save');
    assert.ok(chatAt >= 0 && events.indexOf(saves[0]!) > chatAt, 'the save comes after the reply');
    assert.equal(saves[0]!.filename, key);
    assert.equal(saves[0]!.ok, true);
    assert.equal(saves[0]!.slot, res.line.slot, 'the slot that served the request is the one saved');
    assert.ok(await exists(join(stack.cacheDir, key)), 'llama-server wrote {slot-save-path}/{key}');
    assert.equal(res.line.save?.ok, true);

    const meta = await readMeta(stack.metaDir, key);
    for (const field of ['key', 'model_id', 'prefix_len', 'wpb', 'blocks', 'timestamp']) {
      assert.ok(field in meta, `meta has the seed's field ${field}`);
    }
    assert.equal(meta.key, key);
    assert.equal(meta.model_id, MODEL);
    assert.equal(meta.prefix_len, [...text].length);
    assert.equal(meta.wpb, 8);
    assert.deepEqual(meta.blocks, seedBlocks(text, 8));
    assert.equal(meta.blocks.length, 8);
    assert.equal(typeof meta.timestamp, 'number');
    assert.ok(
      meta.timestamp >= before - 1 && meta.timestamp <= Date.now() / 1000 + 1,
      'timestamp in seconds since the epoch',
    );
  });

  it('a small request is pinned to a slot but neither saved nor given a meta', async () => {
    const messages = opening(102, 12);
    const key = sha256(`${MODEL}\n${messages[0]!.content}`);
    const simMark = stack.sim.events.length;
    const tapMark = tap.requests.length;
    const metasBefore = await readdir(stack.metaDir);

    const res = await chat(stack, messages);

    assert.equal(res.line.big, false);
    assert.equal(res.line.save, undefined);
    const upstream = tap.requests.slice(tapMark).filter((r) => r.path === '/v1/chat/completions');
    assert.equal(upstream[0]!.body.id_slot, res.line.slot);
    assert.deepEqual(slotFileEvents(stack.sim, 'save', simMark), []);
    assert.equal(
      tap.requests.slice(tapMark).filter((r) => r.path.includes('/slots/')).length,
      0,
      'no slot action at all',
    );
    assert.equal(await exists(metaPath(stack.metaDir, key)), false);
    assert.deepEqual(await readdir(stack.metaDir), metasBefore, 'META_DIR unchanged');
    await assert.rejects(stat(join(stack.cacheDir, key)));
  });
});
