/**
 * SAVE_POLICY=smart over HTTP: when a restore is worth doing. Not when the slot that will be used already holds as
 * much of the prompt as the disk entry would bring; and not any more for a model whose restores were seen to bring
 * no reuse (sliding-window / hybrid models), which the log says once.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { chat, continued, keyOf, MODEL, opening, slotFileEvents } from '../support/cache.js';
import type { Message } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';
import { words } from '../support/text.js';

const NO_REUSE_WARNING =
  'restores of this model bring no reuse (sliding-window or hybrid model?); not restoring it any more';

describe('smart policy: restore or prefill', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  it('no restore when the slot to be used already holds as much of the prompt as the disk entry', async () => {
    stack = await startStack({ sim: { models: [{ id: MODEL, nSlots: 1 }] }, env: { SAVE_POLICY: 'smart' } });
    const a = opening(4101); // 8 blocks
    const first = await chat(stack, a);
    await chat(stack, opening(4102)); // a is saved by eviction: an 8-block entry on disk
    // A long branch of a (a, its reply, then 160 new words): restored from a's entry, then it holds the slot.
    const branch = (seed: number): Message[] => [
      ...a,
      { role: 'assistant', content: first.content },
      { role: 'user', content: words(160, seed) },
    ];
    const x = await chat(stack, branch(4103));
    assert.equal(x.line.decision, 'restore');
    assert.equal(x.line.restore?.ok, true);
    const mark = stack.sim.events.length;

    // Another long branch: too different from the slot's branch to count as resident (LCP_TH), but the slot still
    // shares all of a with it, which is everything a's entry on disk could bring.
    const y = await chat(stack, branch(4104));

    assert.deepEqual(slotFileEvents(stack.sim, 'restore', mark), [], 'no restore call');
    assert.equal(y.line.decision, 'cold');
    assert.equal(y.line.restore, undefined);
    assert.equal(y.line.slot, x.line.slot);
    const firstPrompt = first.timings.cache_n + first.timings.prompt_n;
    assert.ok(
      y.timings.cache_n >= firstPrompt,
      `the slot's own prefix is reused: cache_n ${y.timings.cache_n} >= ${firstPrompt}`,
    );
  });

  it('restores that bring no reuse: one warning, then the model is no longer restored, and requests still succeed', async () => {
    stack = await startStack({
      sim: { models: [{ id: MODEL, nSlots: 1, restoreGivesNoReuse: true }] },
      env: { SAVE_POLICY: 'smart' },
    });
    const a = opening(4201);
    const b = opening(4202);
    const firstA = await chat(stack, a);
    const firstB = await chat(stack, b); // saves a
    // Each conversation comes back once: restored (the backend says ok) but cache_n stays near 0.
    const a2 = continued(a, firstA.content, 4203);
    const turnA = await chat(stack, a2); // saves b, restores a
    const b2 = continued(b, firstB.content, 4204);
    const turnB = await chat(stack, b2); // restores b
    for (const turn of [turnA, turnB]) {
      assert.equal(turn.line.decision, 'restore');
      assert.equal(turn.line.restore?.ok, true);
      assert.ok(turn.timings.cache_n < 32, `the restore brought nothing: cache_n ${turn.timings.cache_n}`);
    }
    assert.deepEqual(
      slotFileEvents(stack.sim, 'restore').map((r) => [r.filename, r.ok]),
      [
        [keyOf(a), true],
        [keyOf(b), true],
      ],
    );
    const warnings = () => stack!.logs.withMsg(NO_REUSE_WARNING);
    assert.equal(warnings().length, 1, 'the warning after the second useless restore');
    assert.equal(warnings()[0]!.model, MODEL);
    const mark = stack.sim.events.length;

    // Both conversations have entries on disk, but they are no longer restored.
    const turnA3 = await chat(stack, continued(a2, turnA.content, 4205));
    const turnB3 = await chat(stack, continued(b2, turnB.content, 4206));

    assert.deepEqual(slotFileEvents(stack.sim, 'restore', mark), [], 'no restore call');
    for (const turn of [turnA3, turnB3]) {
      assert.equal(turn.line.status, 200);
      assert.equal(turn.line.decision, 'cold');
      assert.equal(turn.finishReason, 'length', 'a complete answer');
    }
    assert.equal(warnings().length, 1, 'the warning is logged once');
  });
});
