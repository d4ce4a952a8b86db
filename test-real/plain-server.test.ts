/**
 * The proxy in front of a real plain llama-server with `-np 2` and `--cache-ram 0`, so every token reused comes
 * from the slot the proxy pinned or from a file the proxy restored: pinning, small requests, streaming, the
 * save/restore round trip through an eviction, and restores that fail.
 */
import assert from 'node:assert/strict';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { exists, keyOf, metaPath } from '../test/support/cache.js';
import { eventually } from '../test/support/deadline.js';
import { locateLlamaServer } from '../test/support/real-server.js';
import { nextTurn, openingOf, realChat, serverSlots, startRealStack } from '../test/support/real-stack.js';
import type { Message, RealChat, RealStack } from '../test/support/real-stack.js';
import { words } from '../test/support/text.js';

const where = locateLlamaServer();
const skip = 'skip' in where ? where.skip : false;

/** A conversation's meta file, once the proxy has written it (saves may happen after the answer). */
async function savedMeta(stack: RealStack, messages: readonly Message[], ms = 5000): Promise<Record<string, any>> {
  const path = metaPath(stack.metaDir, keyOf(messages));
  await eventually(() => exists(path), ms, `the meta file of ${keyOf(messages).slice(0, 16)}`);
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, any>;
}

/** A, then B and C (three conversations on two slots): A is evicted, and is on disk before it comes back. */
async function evictA(stack: RealStack): Promise<{ a: Message[]; a1: RealChat; b1: RealChat }> {
  const a = openingOf(101);
  const a1 = await realChat(stack, 'proxy', a);
  const b1 = await realChat(stack, 'proxy', openingOf(102));
  await realChat(stack, 'proxy', openingOf(103));
  const meta = await savedMeta(stack, a);
  assert.equal(meta.n_tokens, a1.slotTokens, "the save holds A's prompt and reply");
  return { a, a1, b1 };
}

describe('proxy in front of a real llama-server (-np 2, no RAM cache)', { skip }, () => {
  let stack: RealStack;
  beforeEach(async () => {
    if ('skip' in where) return;
    stack = await startRealStack(where, { server: { slots: 2, args: ['--cache-ram', '0'] } });
  });
  afterEach(() => stack?.close());

  it('pins each conversation to its own slot (id_slot honoured, as GET /slots shows) and continues it there', async () => {
    const a = openingOf(1);
    const a1 = await realChat(stack, 'proxy', a);
    const b1 = await realChat(stack, 'proxy', openingOf(2));
    assert.notEqual(a1.line.slot, b1.line.slot);
    const slots = await serverSlots(stack.server);
    assert.equal(slots[a1.line.slot]!.n_prompt_tokens, a1.slotTokens, 'A is in the slot the proxy pinned it to');
    assert.equal(slots[b1.line.slot]!.n_prompt_tokens, b1.slotTokens, 'B is in the other slot');

    const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 3));
    assert.equal(a2.line.slot, a1.line.slot);
    assert.equal(a2.line.decision, 'resident');
    assert.ok(
      a2.timings.cache_n >= a1.promptTokens,
      `A's second turn reused ${a2.timings.cache_n} of ${a1.promptTokens} tokens`,
    );
    const after = await serverSlots(stack.server);
    assert.equal(after[a1.line.slot]!.n_prompt_tokens, a2.slotTokens);
    assert.equal(after[b1.line.slot]!.id_task, slots[b1.line.slot]!.id_task, "B's slot was not touched");
  });

  it('serves small requests without losing the big conversations in the slots', async () => {
    const a = openingOf(11);
    const b = openingOf(12);
    const a1 = await realChat(stack, 'proxy', a);
    const b1 = await realChat(stack, 'proxy', b);
    const smalls: Message[][] = [];
    for (let i = 0; i < 3; i++) {
      const small: Message[] = [{ role: 'user', content: words(20, 20 + i) }];
      smalls.push(small);
      const s = await realChat(stack, 'proxy', small);
      assert.equal(s.line.status, 200);
      assert.equal(s.line.big, false);
    }
    const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 13));
    const b2 = await realChat(stack, 'proxy', nextTurn(b, b1.content, 14));
    assert.ok(a2.timings.cache_n >= a1.promptTokens, `A reused ${a2.timings.cache_n} of ${a1.promptTokens}`);
    assert.ok(b2.timings.cache_n >= b1.promptTokens, `B reused ${b2.timings.cache_n} of ${b1.promptTokens}`);
    for (const small of smalls)
      assert.equal(await exists(join(stack.cacheDir, keyOf(small))), false, 'small requests are never saved');
  });

  it('streams answers through, byte for byte what the server answers, and continues a streamed conversation', async () => {
    const a = openingOf(31);
    const direct = await realChat(stack, 'direct', a, { maxTokens: 16, extra: { id_slot: 1 } });
    const a1 = await realChat(stack, 'proxy', a, { stream: true, maxTokens: 16 });
    assert.equal(a1.content, direct.content, 'the same reply as the server gives at temperature 0');
    assert.equal(a1.timings.predicted_n, 16);
    assert.equal(a1.line.cache_n, a1.timings.cache_n, 'the proxy read the timings from the stream');
    const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 32), { stream: true });
    assert.equal(a2.line.decision, 'resident');
    assert.ok(a2.timings.cache_n >= a1.promptTokens, `reused ${a2.timings.cache_n} of ${a1.promptTokens}`);
  });

  it('brings an evicted conversation back from disk: the restore gives cache_n of its whole first turn', async () => {
    const { a, a1 } = await evictA(stack);
    const file = await stat(join(stack.cacheDir, keyOf(a)));
    const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 104));
    assert.equal(a2.line.decision, 'restore');
    assert.equal(a2.line.restore.ok, true);
    assert.equal(a2.line.restore.tokens, a1.slotTokens);
    assert.equal(a2.line.restore.bytes, file.size);
    assert.ok(
      a2.timings.cache_n >= a1.promptTokens,
      `A reused ${a2.timings.cache_n} of ${a1.promptTokens} tokens after the restore`,
    );
  });

  for (const damage of ['corrupt', 'missing'] as const) {
    it(`answers normally when the cache file is ${damage}: cold prefill, entry dropped, later requests unaffected`, async () => {
      const { a, a1, b1 } = await evictA(stack);
      const file = join(stack.cacheDir, keyOf(a));
      if (damage === 'corrupt') await writeFile(file, Buffer.alloc(8192, 0x5a));
      else await unlink(file);

      const a2 = await realChat(stack, 'proxy', nextTurn(a, a1.content, 105));
      assert.equal(a2.line.status, 200);
      assert.ok(a2.content.length > 0);
      assert.equal(a2.line.restore?.ok, false, 'the restore was tried and failed');
      assert.ok(a2.timings.cache_n < 16, `nothing reused (${a2.timings.cache_n})`);
      assert.equal(await exists(metaPath(stack.metaDir, keyOf(a))), false, 'the unusable entry is dropped');

      // The slot the failed restore emptied now holds A's new turn, and nothing else was disturbed.
      const a3 = await realChat(stack, 'proxy', nextTurn(nextTurn(a, a1.content, 105), a2.content, 106));
      assert.equal(a3.line.restore, undefined, 'no second attempt at the dropped file');
      assert.ok(
        a3.timings.cache_n >= a2.promptTokens,
        `A's next turn reused ${a3.timings.cache_n} of ${a2.promptTokens}`,
      );
      const b2 = await realChat(stack, 'proxy', nextTurn(openingOf(102), b1.content, 107));
      assert.ok(b2.timings.cache_n >= b1.promptTokens, `B reused ${b2.timings.cache_n} of ${b1.promptTokens}`);
    });
  }
});
