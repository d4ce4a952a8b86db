/**
 * SAVE_POLICY=smart over HTTP: the eviction save of a conversation that extends an entry on disk is skipped when
 * prefilling its growth again later costs less than writing the whole slot now (speeds measured from the
 * simulator's `timings`: prefill_ms, save_ms), and made when it does not. Content with no entry on disk is saved
 * whatever the costs.
 *
 * One slot; each test runs the same flow: a is saved by eviction (b takes the slot), a's next turn (a2) is restored
 * from a's entry and grows by more than SAVE_MIN_NEW_TOKENS, then a third conversation takes the slot.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { CostModel } from '../../src/sim/index.js';
import { chat, exists, keyOf, metaPath, MODEL, opening, slotFileEvents } from '../support/cache.js';
import type { ChatResult, Message } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { words } from '../support/text.js';
import { closeStack } from '../support/teardown.js';

const MIN_NEW_TOKENS = 16;
const KV_BYTES_PER_TOKEN = 1000;
/** Writing 1 MB (1000 tokens here) takes 10 s: 10 ms per token, 40 × the 0.25 ms a token takes to prefill. */
const SLOW_SAVE: Partial<CostModel> = { timeScale: 0, kvBytesPerToken: KV_BYTES_PER_TOKEN, saveMsPerMB: 10_000 };
/** Writing 1 MB takes 0.5 ms: 0.0005 ms per token, 500 × cheaper than prefilling it. */
const FAST_SAVE: Partial<CostModel> = { timeScale: 0, kvBytesPerToken: KV_BYTES_PER_TOKEN, saveMsPerMB: 0.5 };

function smartStack(cost: Partial<CostModel>): Promise<Stack> {
  return startStack({
    sim: { models: [{ id: MODEL, nSlots: 1 }], cost },
    env: { SAVE_POLICY: 'smart', SAVE_MIN_NEW_TOKENS: String(MIN_NEW_TOKENS) },
  });
}

/** The conversation so far, the assistant's reply, and a user message of `count` words. */
function continuedBy(messages: readonly Message[], reply: string, seed: number, count: number): Message[] {
  return [...messages, { role: 'assistant', content: reply }, { role: 'user', content: words(count, seed) }];
}

interface Flow {
  a: Message[];
  a2: Message[];
  grown: ChatResult;
  /** The request that took a2's slot. */
  third: ChatResult;
  /** Simulator events from the third request on. */
  mark: number;
}

/** a saved by eviction; a2 = a + 20 words, restored from a's entry; then a third conversation takes the slot. */
async function savedGrownEvicted(stack: Stack, seed: number): Promise<Flow> {
  const a = opening(seed);
  const first = await chat(stack, a);
  assert.ok(first.timings.prompt_n >= 64, 'a prefill long enough to measure its speed');
  const evicting = await chat(stack, opening(seed + 1));
  assert.equal(evicting.line.evict_save?.ok, true, 'a, with no entry on disk, is saved when b takes its slot');
  const a2 = continuedBy(a, first.content, seed + 2, 20);
  const grown = await chat(stack, a2);
  assert.equal(grown.line.decision, 'restore');
  assert.equal(grown.line.restore?.ok, true, JSON.stringify(grown.line.restore));
  const mark = stack.sim.events.length;
  const third = await chat(stack, opening(seed + 3));
  return { a, a2, grown, third, mark };
}

async function fileAndMeta(stack: Stack, key: string): Promise<[boolean, boolean]> {
  return [await exists(join(stack.cacheDir, key)), await exists(metaPath(stack.metaDir, key))];
}

describe('smart policy: eviction re-saves weighed against re-prefilling', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  it('save slow: a grown conversation is not saved again at eviction; it comes back from its older entry and prefills only its growth and the new turn', async () => {
    stack = await smartStack(SLOW_SAVE);
    const { a, a2, grown, third, mark } = await savedGrownEvicted(stack, 3101);

    assert.deepEqual(
      slotFileEvents(stack.sim, 'save', mark).map((s) => s.filename),
      [],
      'no save of a2',
    );
    assert.equal(third.line.evict_save, undefined);
    const skip = third.line.evict_skip as { unsaved_tokens: number; tokens: number; reason: string };
    assert.equal(skip?.reason, 'cheaper to prefill', JSON.stringify(third.line));
    assert.ok(skip.unsaved_tokens >= MIN_NEW_TOKENS, `a2 grew by ${skip.unsaved_tokens} tokens: above the floor`);
    assert.deepEqual(await fileAndMeta(stack, keyOf(a2)), [false, false], 'no entry for a2');
    assert.deepEqual(await fileAndMeta(stack, keyOf(a)), [true, true], "a's entry stays on disk");
    assert.equal(stack.proxy.state.index.get(keyOf(a))?.key, keyOf(a), 'and in the index');

    const restoreMark = stack.sim.events.length;
    const a3 = continuedBy(a2, grown.content, 3102, 6);
    const back = await chat(stack, a3);

    assert.equal(back.line.decision, 'restore');
    assert.deepEqual(
      slotFileEvents(stack.sim, 'restore', restoreMark).map((r) => [r.filename, r.ok]),
      [[keyOf(a), true]],
      "restored from a's older entry",
    );
    const restored = back.line.restore.tokens as number;
    assert.equal(restored + skip.unsaved_tokens, skip.tokens, "a's entry plus the growth given up make up a2's slot");
    assert.equal(back.timings.cache_n, restored, 'all of the restored entry is reused');
    const newTurn = back.timings.cache_n + back.timings.prompt_n - skip.tokens;
    assert.equal(
      back.timings.prompt_n,
      skip.unsaved_tokens + newTurn,
      `prefilled: the ${skip.unsaved_tokens} tokens given up and the ${newTurn} of the new turn`,
    );
  });

  it('save fast: the same grown conversation is saved at eviction, and lineage retires its older entry', async () => {
    stack = await smartStack(FAST_SAVE);
    const { a, a2, third, mark } = await savedGrownEvicted(stack, 3201);

    assert.equal(third.line.evict_save?.ok, true, JSON.stringify(third.line.evict_save));
    assert.equal(third.line.evict_skip, undefined);
    assert.deepEqual(
      slotFileEvents(stack.sim, 'save', mark).map((s) => [s.filename, s.ok]),
      [[keyOf(a2), true]],
    );
    assert.deepEqual(await fileAndMeta(stack, keyOf(a2)), [true, true], 'a2 is on disk');
    assert.deepEqual(await fileAndMeta(stack, keyOf(a)), [false, false], "a's older file and meta are gone");
    assert.equal(stack.proxy.state.index.get(keyOf(a)), undefined, 'and so is its index entry');
  });

  it('save slow: content with no entry on disk is saved at eviction all the same', async () => {
    stack = await smartStack(SLOW_SAVE);
    await chat(stack, opening(3301));
    const b = opening(3302);
    const bTurn = await chat(stack, b); // b evicts a: a is saved, and the save speed measured
    const bTokens = bTurn.timings.cache_n + bTurn.timings.prompt_n;
    assert.equal(
      stack.proxy.state.economics.resaveWorthIt(MODEL, bTokens, bTokens),
      false,
      'the measured costs alone would let b go: prefilling all of it is cheaper than writing it',
    );
    const mark = stack.sim.events.length;

    const c = await chat(stack, opening(3303));

    assert.equal(c.line.evict_save?.ok, true, JSON.stringify(c.line));
    assert.equal(c.line.evict_skip, undefined);
    assert.deepEqual(
      slotFileEvents(stack.sim, 'save', mark).map((s) => [s.filename, s.ok]),
      [[keyOf(b), true]],
    );
    assert.deepEqual(await fileAndMeta(stack, keyOf(b)), [true, true]);
  });

  it('save slow, behind llama-swap: a grown conversation is not saved before its model is swapped out, and comes back from its older entry', async () => {
    const [A, B] = ['model-a', 'model-b'];
    stack = await startStack({
      sim: {
        mode: 'llama-swap',
        models: [
          { id: A, nSlots: 1 },
          { id: B, nSlots: 1 },
        ],
        cost: SLOW_SAVE,
      },
      env: { SAVE_POLICY: 'smart', SAVE_MIN_NEW_TOKENS: String(MIN_NEW_TOKENS), BACKEND_TYPE: 'auto', N_SLOTS: '1' },
    });
    const a = opening(3501);
    const first = await chat(stack, a, { model: A });
    await chat(stack, opening(3502), { model: A }); // evicts a: a is saved, the save speed measured
    const a2 = continuedBy(a, first.content, 3503, 20);
    const grown = await chat(stack, a2, { model: A });
    assert.equal(grown.line.restore?.ok, true, JSON.stringify(grown.line));
    const mark = stack.sim.events.length;
    const logMark = stack.logs.lines.length;

    await chat(stack, opening(3504), { model: B });

    assert.deepEqual(
      slotFileEvents(stack.sim, 'save', mark).map((e) => [e.model, e.filename]),
      [],
      'nothing saved before the swap',
    );
    const skipped = stack.logs.lines.slice(logMark).find((l) => l.msg === 'not saved before model swap');
    assert.deepEqual(
      [skipped?.model, skipped?.for_model, (skipped?.skip as { reason?: string })?.reason],
      [A, B, 'cheaper to prefill'],
    );
    assert.ok(stack.proxy.state.index.get(keyOf(a, A)), "a's entry stays");

    const restoreMark = stack.sim.events.length;
    const back = await chat(stack, continuedBy(a2, grown.content, 3505, 6), { model: A });
    assert.deepEqual(
      slotFileEvents(stack.sim, 'restore', restoreMark).map((r) => [r.filename, r.ok]),
      [[keyOf(a, A), true]],
    );
    assert.equal(back.timings.cache_n, back.line.restore.tokens, "all of a's restored entry is reused");
  });

  it("save and restore speeds come from the server's own timings, not the wall clock", async () => {
    stack = await smartStack(SLOW_SAVE);
    await chat(stack, opening(3401));
    const mark = stack.sim.events.length;

    const evicting = await chat(stack, opening(3402));

    const [save] = slotFileEvents(stack.sim, 'save', mark);
    const modelMs = Math.round((save!.bytes / 1e6) * 10_000 * 1000) / 1000;
    assert.equal(
      evicting.line.evict_save?.serverMs,
      modelMs,
      `save_ms of ${save!.bytes} bytes at 10 s/MB (the sim sleeps none of it)`,
    );
  });
});
