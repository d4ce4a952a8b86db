/**
 * SAVE_POLICY=smart over HTTP: when a slot's content is written to disk. Not after a turn (the slot still holds it),
 * but right before the slot is given to another conversation, and on a graceful shutdown; a conversation that
 * keeps its slot is served from it without any disk traffic.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import {
  chat,
  chatEvents,
  continued,
  eventsSince,
  exists,
  keyOf,
  metaPath,
  opening,
  readMeta,
  slotFileEvents,
} from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { closeStack } from '../support/teardown.js';

const SMART = { SAVE_POLICY: 'smart' };

describe('smart policy: save points', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    if (stack) await closeStack(stack);
    stack = undefined;
  });

  it('a big turn is not saved after its answer; it is saved right before its slot goes to another conversation, and restored from there', async () => {
    stack = await startStack({ env: SMART });
    const a = opening(1101);
    const b = opening(1102);
    const c = opening(1103);

    const first = await chat(stack, a);
    assert.equal(first.line.big, true);
    assert.equal(first.line.save, undefined, 'no save after the turn');
    await chat(stack, b); // the other, empty slot
    assert.deepEqual(slotFileEvents(stack.sim, 'save'), [], 'two turns, no save yet');

    // Both slots hold unsaved conversations: the third takes the least recently used one (a's), saving it first.
    const simMark = stack.sim.events.length;
    const third = await chat(stack, c);
    assert.equal(third.line.slot, first.line.slot, "c takes a's slot (LRU)");
    assert.equal(third.line.evict_save?.ok, true, JSON.stringify(third.line.evict_save));
    assert.equal(third.line.save, undefined);
    const events = eventsSince(stack.sim, simMark).filter((e) => e.type === 'save' || e.type === 'chat');
    assert.deepEqual(
      events.map((e) => [
        e.type,
        'slot' in e ? e.slot : undefined,
        'filename' in e ? e.filename : undefined,
        'ok' in e ? e.ok : undefined,
      ]),
      [
        ['save', first.line.slot, keyOf(a), true],
        ['chat', first.line.slot, undefined, undefined],
      ],
      "a's content is saved on its slot, then c runs there",
    );
    assert.ok(await exists(join(stack.cacheDir, keyOf(a))), 'the cache file');
    assert.equal((await readMeta(stack.metaDir, keyOf(a))).key, keyOf(a), 'and its meta');

    // a comes back: restored from the eviction save, and the backend reuses it.
    const restoreMark = stack.sim.events.length;
    const next = await chat(stack, continued(a, first.content, 1104));
    assert.equal(next.line.decision, 'restore');
    assert.equal(next.line.restore?.ok, true, JSON.stringify(next.line.restore));
    const restores = slotFileEvents(stack.sim, 'restore', restoreMark);
    assert.deepEqual(
      restores.map((r) => [r.filename, r.ok]),
      [[keyOf(a), true]],
    );
    const firstPrompt = first.timings.cache_n + first.timings.prompt_n;
    assert.ok(
      next.timings.cache_n >= firstPrompt,
      `cache_n ${next.timings.cache_n} covers the first prompt (${firstPrompt})`,
    );
  });

  it('a continuing conversation returns to its slot: resident, no restore, no save, its prefix reused', async () => {
    stack = await startStack({ env: SMART });
    const a = opening(1201);
    const b = opening(1202);
    const first = await chat(stack, a);
    const other = await chat(stack, b);
    assert.notEqual(other.line.slot, first.line.slot);
    const simMark = stack.sim.events.length;

    // a's slot is the least recently used one, yet a is routed back to it.
    const next = await chat(stack, continued(a, first.content, 1203));

    assert.equal(next.line.decision, 'resident');
    assert.equal(next.line.slot, first.line.slot);
    assert.equal(next.line.restore, undefined);
    assert.equal(next.line.evict_save, undefined);
    assert.equal(next.line.save, undefined);
    assert.deepEqual(slotFileEvents(stack.sim, 'restore', simMark), [], 'no restore call');
    assert.deepEqual(slotFileEvents(stack.sim, 'save', simMark), [], 'no save call');
    assert.deepEqual(
      chatEvents(stack.sim, simMark).map((e) => e.slot),
      [first.line.slot],
    );
    const firstPrompt = first.timings.cache_n + first.timings.prompt_n;
    assert.ok(
      next.timings.cache_n >= firstPrompt,
      `cache_n ${next.timings.cache_n} covers the first prompt (${firstPrompt})`,
    );
    assert.ok(next.timings.prompt_n < next.timings.cache_n / 2, `prompt_n ${next.timings.prompt_n} is small`);
  });

  it('a graceful shutdown saves what only the slots hold; after a restart of both, the conversation is restored from disk', async () => {
    stack = await startStack({ env: SMART });
    const a = opening(1301);
    const first = await chat(stack, a);
    assert.deepEqual(slotFileEvents(stack.sim, 'save'), [], 'nothing saved while running');
    const simMark = stack.sim.events.length;

    await stack.restartProxy(); // close() saves on shutdown, then a new proxy starts on the same dirs

    const saves = slotFileEvents(stack.sim, 'save', simMark);
    assert.deepEqual(
      saves.map((s) => [s.filename, s.slot, s.ok]),
      [[keyOf(a), first.line.slot, true]],
    );
    assert.ok(stack.logs.withMsg('saved on shutdown').some((l) => (l.save as { ok?: boolean }).ok === true));
    assert.ok(await exists(metaPath(stack.metaDir, keyOf(a))), 'the meta is written before the proxy is gone');
    assert.ok(await exists(join(stack.cacheDir, keyOf(a))));

    await stack.sim.restart(); // the backend forgets its slots too
    const restoreMark = stack.sim.events.length;
    const next = await chat(stack, continued(a, first.content, 1302));

    assert.equal(next.line.decision, 'restore');
    assert.deepEqual(
      slotFileEvents(stack.sim, 'restore', restoreMark).map((r) => [r.filename, r.ok]),
      [[keyOf(a), true]],
    );
    const firstPrompt = first.timings.cache_n + first.timings.prompt_n;
    assert.ok(
      next.timings.cache_n >= firstPrompt,
      `cache_n ${next.timings.cache_n} covers the first prompt (${firstPrompt})`,
    );
  });
});
