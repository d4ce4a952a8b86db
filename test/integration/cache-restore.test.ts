/**
 * Restoring a conversation's KV cache from disk before a request: when it happens (evicted from every slot), when
 * it does not (the slot still holds it), and that a failed restore never fails the user's request.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RESTORE_FAILED } from '../../src/sim/slot-actions.js';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  chat,
  chatEvents,
  continued,
  exists,
  keyOf,
  metaPath,
  MODEL,
  opening,
  slotFileEvents,
} from '../support/cache.js';
import type { Message, Timings } from '../support/cache.js';
import { withDeadline } from '../support/deadline.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { startTappedStack } from '../support/tapped-stack.js';

/**
 * The follow-up reused at least the whole first prompt (its cold prompt_n) and prefilled only the reply's tail,
 * the template and the new message.
 */
function assertReused(next: Timings, first: Timings): void {
  const firstPrompt = first.cache_n + first.prompt_n;
  assert.ok(next.cache_n >= firstPrompt, `cache_n ${next.cache_n} covers the first prompt (${firstPrompt} tokens)`);
  assert.ok(next.prompt_n < next.cache_n / 2, `prompt_n ${next.prompt_n} is small next to cache_n ${next.cache_n}`);
}

/** True when some slot of the simulator holds the text of `messages`' first message. */
function residentAnywhere(stack: Stack, messages: readonly Message[], nSlots: number): boolean {
  const needle = messages[0]!.content.split(' ').slice(0, 12).join(' ');
  for (let i = 0; i < nSlots; i++) {
    if ((stack.sim.slotTokens(MODEL, i) ?? []).join('').includes(needle)) return true;
  }
  return false;
}

/** Run other big conversations until no slot holds `messages` any more (bounded). */
async function evict(stack: Stack, messages: readonly Message[], nSlots: number, seed: number): Promise<void> {
  for (let i = 0; residentAnywhere(stack, messages, nSlots); i++) {
    assert.ok(i < 2 * nSlots + 2, 'the conversation could not be evicted from the slots');
    await chat(stack, opening(seed + i));
  }
}

describe('restore from disk', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  let tap: Tap | undefined;
  afterEach(async () => {
    await tap?.close();
    await stack?.close();
    stack = tap = undefined;
  });

  it('a conversation evicted from every slot is restored into the slot its next request then uses, and the backend reuses it', async () => {
    stack = await startStack();
    const a = opening(201);
    const first = await chat(stack, a);
    await evict(stack, a, 2, 210);
    const simMark = stack.sim.events.length;

    const next = await chat(stack, continued(a, first.content, 202), { stream: true });

    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1, 'one restore');
    assert.equal(restores[0]!.filename, keyOf(a), "the restored file is the first turn's key");
    assert.equal(restores[0]!.ok, true);
    const chats = chatEvents(stack.sim, simMark);
    assert.equal(chats.length, 1);
    assert.equal(chats[0]!.slot, restores[0]!.slot, 'the chat runs on the slot that was restored');
    assert.equal(next.line.slot, restores[0]!.slot);
    assert.equal(next.line.decision, 'restore');
    assert.equal(next.line.restore?.ok, true);
    // The timeline: slot, then (after the restore) the task sent, then the backend's first byte (ms rounded to 0.01).
    const { wait_ms: wait, sent_ms: sent, first_byte_ms: firstByte, total_ms: total } = next.line;
    assert.ok(
      wait + next.line.restore.ms <= sent + 0.05 && sent <= firstByte && firstByte <= total,
      JSON.stringify(next.line),
    );
    assert.equal(next.finishReason, 'length', 'the answer is complete');
    // What the client got: most of the prompt came from the restored cache.
    assertReused(next.timings, first.timings);
  });

  it('no restore while the slot still holds the conversation (resident)', async () => {
    stack = await startStack();
    const a = opening(221);
    const first = await chat(stack, a, { stream: true });
    const simMark = stack.sim.events.length;

    const next = await chat(stack, continued(a, first.content, 222));

    assert.deepEqual(slotFileEvents(stack.sim, 'restore', simMark), [], 'no restore call');
    assert.equal(next.line.decision, 'resident');
    assert.equal(next.line.slot, first.line.slot);
    assert.equal(chatEvents(stack.sim, simMark)[0]!.slot, first.line.slot);
    assertReused(next.timings, first.timings);
  });

  it('a restore the backend refuses does not fail the request; the slot is recorded empty while the request runs cold', async () => {
    ({ stack, tap } = await startTappedStack({ sim: { models: [{ id: MODEL, nSlots: 1 }] } }));
    const a = opening(231);
    const first = await chat(stack, a);
    await evict(stack, a, 1, 240);
    const follow = continued(a, first.content, 232);
    stack.sim.injectFault({ action: 'restore', status: 500, message: 'injected restore failure' });
    const held = tap.hold((r) => r.path === '/v1/chat/completions' && keyOf(r.body.messages) === keyOf(follow));
    const simMark = stack.sim.events.length;

    const pending = chat(stack, follow);
    pending.catch(() => undefined); // awaited below
    try {
      await withDeadline(held.arrived, 5000, 'the chat after the failed restore');
      const busy = stack.proxy.state.pool.all().filter((s) => s.busy);
      assert.equal(busy.length, 1);
      assert.equal(
        busy[0]!.content,
        undefined,
        'after a failed restore the proxy no longer believes the slot holds anything',
      );
    } finally {
      held.release();
    }
    const next = await pending;

    assert.equal(next.line.status, 200);
    assert.equal(next.finishReason, 'length', 'the answer is complete');
    assert.ok(next.content.length > 0);
    assert.equal(next.line.decision, 'restore');
    assert.equal(next.line.restore?.ok, false);
    assert.match(String(next.line.restore?.error), /500/);
    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.ok, false);
    assert.equal(next.timings.cache_n, 0, 'the backend emptied the slot, the prompt was prefilled from scratch');
  });

  it('a cache file deleted behind the proxy: the restore fails (400), the request still answers 200 in full', async () => {
    stack = await startStack();
    const a = opening(251);
    const first = await chat(stack, a);
    await evict(stack, a, 2, 260);
    await rm(join(stack.cacheDir, keyOf(a)));
    const simMark = stack.sim.events.length;

    const next = await chat(stack, continued(a, first.content, 252), { stream: true });

    assert.equal(next.line.status, 200);
    assert.equal(next.finishReason, 'length');
    assert.equal(next.line.restore?.ok, false);
    assert.match(String(next.line.restore?.error), /400/);
    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.status, 400);
    assert.equal(chatEvents(stack.sim, simMark)[0]!.slot, restores[0]!.slot);
    assert.equal(next.timings.cache_n, 0);
  });

  it('a file the backend cannot load is forgotten (index and meta): later requests do not try it again', async () => {
    stack = await startStack();
    const a = opening(271); // 64 words: whole blocks, so its entry keeps the best ratio for every later turn
    const first = await chat(stack, a);
    await evict(stack, a, 2, 280);
    await rm(join(stack.cacheDir, keyOf(a)));
    const turn2 = continued(a, first.content, 272);
    const failed = await chat(stack, turn2);
    assert.equal(failed.line.restore?.ok, false);
    assert.equal(failed.line.restore?.dropped, true);
    assert.equal(await exists(metaPath(stack.metaDir, keyOf(a))), false, 'the meta of the unloadable file is gone');
    await evict(stack, a, 2, 290);
    const simMark = stack.sim.events.length;

    const next = await chat(stack, continued(a, first.content, 273));

    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.deepEqual(
      restores.filter((r) => r.filename === keyOf(a)),
      [],
      'the lost file is not tried again',
    );
    assert.deepEqual(
      restores.map((r) => [r.filename, r.ok]),
      [[keyOf(turn2), true]],
      "turn 2's cache is used instead",
    );
    assert.equal(next.line.status, 200);
  });

  it("a 400 for a file still at the size its save wrote keeps the entry: the server's answer is the same for no room", async () => {
    stack = await startStack();
    const a = opening(281);
    const first = await chat(stack, a);
    await evict(stack, a, 2, 285);
    // What llama-server answers when its unified KV buffer has no room beside the other slots' tokens.
    stack.sim.injectFault({ action: 'restore', status: 400, message: RESTORE_FAILED });

    const next = await chat(stack, continued(a, first.content, 282));

    assert.equal(next.line.restore?.ok, false);
    assert.equal(next.line.restore?.dropped, undefined);
    assert.ok(await exists(metaPath(stack.metaDir, keyOf(a))), 'the meta stays');
    const kept = stack.logs.lines.find((l) => String(l.msg).startsWith('the server could not restore the cache file'));
    assert.equal(kept?.why, 'file intact', JSON.stringify(kept));
  });

  it('a transient restore failure (5xx) keeps the entry', async () => {
    stack = await startStack();
    const a = opening(291);
    const first = await chat(stack, a);
    await evict(stack, a, 2, 295);
    stack.sim.injectFault({ action: 'restore', status: 503, message: 'Loading model' });

    const next = await chat(stack, continued(a, first.content, 292));

    assert.equal(next.line.restore?.ok, false);
    assert.equal(next.line.restore?.dropped, undefined);
    assert.ok(await exists(metaPath(stack.metaDir, keyOf(a))), 'the meta stays');
  });
});
