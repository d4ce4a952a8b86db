/**
 * SAVE_POLICY=smart over HTTP, for a conversation that already has an entry on disk and grew a little:
 * - SAVE_MIN_NEW_TOKENS: growth below it is not worth a new file when the slot is given away;
 * - lineage: once the grown content is saved, the older entry it extends (file in CACHE_DIR and meta) is deleted,
 *   and only then; a failed save keeps the older entry.
 *
 * Each test runs the same flow on one slot: a is saved by eviction (b takes the slot), a's next turn (a2) is
 * restored from it and grows by a few tokens, then a third conversation takes the slot.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { chat, continued, exists, keyOf, metaPath, MODEL, opening, slotFileEvents } from '../support/cache.js';
import type { ChatResult, Message } from '../support/cache.js';
import { withDeadline } from '../support/deadline.js';
import { startStack } from '../support/stack.js';
import type { Stack, StackOptions } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { startTappedStack } from '../support/tapped-stack.js';
import { closeStack } from '../support/teardown.js';

/** One slot, SAVE_POLICY=smart with this SAVE_MIN_NEW_TOKENS. */
function smartOptions(minNewTokens: number): StackOptions {
  return {
    sim: { models: [{ id: MODEL, nSlots: 1 }] },
    env: { SAVE_POLICY: 'smart', SAVE_MIN_NEW_TOKENS: String(minNewTokens) },
  };
}

function smartStack(minNewTokens: number): Promise<Stack> {
  return startStack(smartOptions(minNewTokens));
}

/** a saved by eviction, then a2 = a + a few tokens, restored from a's entry; returns both conversations. */
async function savedThenGrown(
  stack: Stack,
  seed: number,
): Promise<{ a: Message[]; a2: Message[]; first: ChatResult; grown: ChatResult }> {
  const a = opening(seed);
  const first = await chat(stack, a);
  const evicting = await chat(stack, opening(seed + 1));
  assert.equal(evicting.line.evict_save?.ok, true, 'a is saved when b takes its slot');
  const a2 = continued(a, first.content, seed + 2);
  const grown = await chat(stack, a2);
  assert.equal(grown.line.decision, 'restore');
  assert.equal(grown.line.restore?.ok, true, JSON.stringify(grown.line.restore));
  assert.ok(grown.timings.prompt_n < 64, `a2 adds only a few tokens (prompt_n ${grown.timings.prompt_n})`);
  return { a, a2, first, grown };
}

async function fileAndMeta(stack: Stack, key: string): Promise<[boolean, boolean]> {
  return [await exists(join(stack.cacheDir, key)), await exists(metaPath(stack.metaDir, key))];
}

describe('smart policy: tiny re-saves and lineage', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  let tap: Tap | undefined;
  afterEach(async () => {
    await tap?.close();
    if (stack) await closeStack(stack);
    stack = tap = undefined;
  });

  it('SAVE_MIN_NEW_TOKENS=100000: a restored conversation that grew by a few tokens is not saved again when evicted', async () => {
    stack = await smartStack(100_000);
    const { a2 } = await savedThenGrown(stack, 2101);
    const mark = stack.sim.events.length;

    const third = await chat(stack, opening(2110));

    assert.equal(third.line.evict_save, undefined, 'no eviction save');
    assert.deepEqual(slotFileEvents(stack.sim, 'save', mark), [], 'no save call at all');
    assert.deepEqual(await fileAndMeta(stack, keyOf(a2)), [false, false]);
  });

  it('SAVE_MIN_NEW_TOKENS=0: the same flow saves the grown conversation when evicted', async () => {
    stack = await smartStack(0);
    const { a2 } = await savedThenGrown(stack, 2201);
    const mark = stack.sim.events.length;

    const third = await chat(stack, opening(2210));

    assert.equal(third.line.evict_save?.ok, true, JSON.stringify(third.line.evict_save));
    assert.deepEqual(
      slotFileEvents(stack.sim, 'save', mark).map((s) => [s.filename, s.ok]),
      [[keyOf(a2), true]],
    );
    assert.deepEqual(await fileAndMeta(stack, keyOf(a2)), [true, true]);
  });

  it("lineage: turn 1's file and meta are deleted once turn 2's save succeeded, not before", async () => {
    ({ stack, tap } = await startTappedStack(smartOptions(0)));
    const { a, a2 } = await savedThenGrown(stack, 2301);
    assert.deepEqual(await fileAndMeta(stack, keyOf(a)), [true, true], "turn 1's entry is on disk");
    const held = tap.hold((r) => r.path.includes('action=save') && r.body?.filename === keyOf(a2));

    const pending = chat(stack, opening(2310));
    pending.catch(() => undefined); // awaited below
    try {
      await withDeadline(held.arrived, 5000, 'the save of turn 2');
      assert.deepEqual(
        await fileAndMeta(stack, keyOf(a)),
        [true, true],
        "turn 1's entry stays while turn 2's save is in flight",
      );
    } finally {
      held.release();
    }
    const third = await pending;

    assert.equal(third.line.evict_save?.ok, true, JSON.stringify(third.line.evict_save));
    assert.deepEqual(await fileAndMeta(stack, keyOf(a2)), [true, true], "turn 2's entry");
    assert.deepEqual(await fileAndMeta(stack, keyOf(a)), [false, false], "turn 1's file and meta are gone");
    assert.equal(stack.proxy.state.index.get(keyOf(a)), undefined, 'and so is its index entry');
  });

  it("lineage: when turn 2's save fails, turn 1's file and meta stay, and the conversation is still restored from it", async () => {
    stack = await smartStack(0);
    const { a, a2, grown } = await savedThenGrown(stack, 2401);
    stack.sim.injectFault({ action: 'save', status: 500, message: 'injected save failure' });

    const third = await chat(stack, opening(2410));

    assert.equal(third.line.evict_save?.ok, false, 'the eviction save failed');
    assert.equal(third.line.status, 200, 'the request is served anyway');
    assert.deepEqual(await fileAndMeta(stack, keyOf(a)), [true, true], "turn 1's entry is kept");
    assert.equal((await fileAndMeta(stack, keyOf(a2)))[1], false, 'no meta for the failed save');

    const mark = stack.sim.events.length;
    const next = await chat(stack, continued(a2, grown.content, 2402));
    assert.equal(next.line.decision, 'restore');
    assert.deepEqual(
      slotFileEvents(stack.sim, 'restore', mark).map((r) => [r.filename, r.ok]),
      [[keyOf(a), true]],
    );
  });
});
