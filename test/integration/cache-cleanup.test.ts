/**
 * The cleanup job against real files written by the simulator: the start-up run deletes by age and by size and
 * keeps the index in step (a continuation no longer restores what was deleted), and a file a slot is being
 * restored from, or that a plan will restore once the save before it is done, is never deleted. Limits by age and
 * size in isolation are unit-tested in test/unit.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createMetaStore } from '../../src/cache/meta-store.js';
import { createCacheCleanup } from '../../src/cleanup/cache-cleanup.js';
import type { CacheCleanup } from '../../src/cleanup/cache-cleanup.js';
import {
  chat,
  continued,
  exists,
  keyOf,
  logLineAfter,
  metaPath,
  MODEL,
  opening,
  slotFileEvents,
} from '../support/cache.js';
import type { Message } from '../support/cache.js';
import { withDeadline } from '../support/deadline.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import type { Tap } from '../support/tap.js';
import { startTappedStack } from '../support/tapped-stack.js';

const HOUR_S = 3600;

/** Set a cache file's mtime to `hoursAgo` hours before now. */
async function age(stack: Stack, messages: readonly Message[], hoursAgo: number): Promise<void> {
  const t = Date.now() / 1000 - hoursAgo * HOUR_S;
  await utimes(join(stack.cacheDir, keyOf(messages)), t, t);
}

/** Restart the proxy (its start-up cleanup runs) and resolve with that run's 'cache cleanup done' line. */
async function restartAndClean(stack: Stack, env: Record<string, string> = {}): Promise<Record<string, any>> {
  const mark = stack.logs.lines.length;
  await stack.restartProxy(env);
  return logLineAfter(stack.logs, mark, 'cache cleanup done');
}

/** Cache file and meta file of a conversation both exist (true), both are gone (false), or they disagree (throws). */
async function stored(stack: Stack, messages: readonly Message[]): Promise<boolean> {
  const file = await exists(join(stack.cacheDir, keyOf(messages)));
  const meta = await exists(metaPath(stack.metaDir, keyOf(messages)));
  assert.equal(file, meta, `cache file (${file}) and meta (${meta}) agree`);
  return file;
}

/** A cleanup job sharing the proxy's index, with a budget of one byte: it deletes every file it may. */
function oneByteCleanup(stack: Stack): CacheCleanup {
  return createCacheCleanup({
    cacheDir: stack.cacheDir,
    maxAgeHours: 0,
    maxSizeGb: 1 / 1024 ** 3,
    intervalMinutes: 0,
    index: stack.proxy.state.index,
    metaStore: createMetaStore(stack.metaDir),
    log: { info: () => undefined, warn: () => undefined },
  });
}

describe('cache cleanup', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  let tap: Tap | undefined;
  afterEach(async () => {
    await tap?.close();
    await stack?.close();
    stack = tap = undefined;
  });

  it('by age at start-up: old files go with their meta and index entry, so a continuation no longer restores', async () => {
    stack = await startStack();
    const a = opening(601);
    const first = await chat(stack, a);
    const b = opening(602);
    await chat(stack, b);
    await age(stack, a, 200); // CACHE_MAX_AGE_HOURS defaults to 168
    await age(stack, b, 100);
    await stack.sim.restart();

    const done = await restartAndClean(stack);

    assert.equal(done.deletedByAge, 1);
    assert.equal(await stored(stack, a), false);
    assert.equal(await stored(stack, b), true, 'younger than the limit: kept');
    const simMark = stack.sim.events.length;
    const next = await chat(stack, continued(a, first.content, 603));
    assert.deepEqual(slotFileEvents(stack.sim, 'restore', simMark), []);
    assert.equal(next.line.decision, 'cold');
  });

  it('by size at start-up: oldest first until the total fits, the newest kept and still restorable', async () => {
    stack = await startStack();
    const convs = [opening(611), opening(612), opening(613)];
    const replies: string[] = [];
    for (const c of convs) replies.push((await chat(stack, c)).content);
    for (const [i, c] of convs.entries()) await age(stack, c, 3 - i); // convs[2] is the newest
    const sizes = await Promise.all(convs.map(async (c) => (await stat(join(stack!.cacheDir, keyOf(c)))).size));
    // Room for the newest file alone.
    const budget = sizes[2]! + 1000;
    assert.ok(budget < sizes[1]! + sizes[2]!, 'precondition: two files do not fit');

    const done = await restartAndClean(stack, { CACHE_MAX_SIZE_GB: String(budget / 1024 ** 3) });

    assert.equal(done.deletedBySize, 2);
    assert.deepEqual(await Promise.all(convs.map((c) => stored(stack!, c))), [false, false, true]);
    const simMark = stack.sim.events.length;
    const next = await chat(stack, continued(convs[2]!, replies[2]!, 614));
    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.filename, keyOf(convs[2]!));
    assert.equal(next.line.restore?.ok, true);
  });

  it('never deletes the file a slot is being restored from', async () => {
    ({ stack, tap } = await startTappedStack({ sim: { models: [{ id: MODEL, nSlots: 1 }] } }));
    const a = opening(621);
    const first = await chat(stack, a);
    const b = opening(622);
    await chat(stack, b); // one slot: A is evicted, B saved
    const held = tap.hold((r) => r.path.includes('action=restore'));
    const simMark = stack.sim.events.length;

    const cleanup = oneByteCleanup(stack);

    const pending = chat(stack, continued(a, first.content, 623));
    pending.catch(() => undefined); // awaited below
    let stats;
    try {
      const restore = await withDeadline(held.arrived, 5000, 'the restore request');
      assert.equal(restore.body.filename, keyOf(a));
      stats = await cleanup.runOnce(); // while the restore is in flight
    } finally {
      held.release();
    }
    assert.equal(stats.skippedPinned, 1);
    assert.equal(stats.deletedBySize, 1, 'the budget was enforced on the other file');
    assert.equal(await stored(stack, b), false);
    assert.equal(await stored(stack, a), true, 'the file being restored is kept');

    const next = await pending;
    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.ok, true);
    assert.equal(next.line.restore?.ok, true);
    assert.ok(next.timings.cache_n >= first.timings.prompt_n, `cache_n ${next.timings.cache_n}`);
  });
  it('never deletes the file a plan will restore while the save before it runs', async () => {
    ({ stack, tap } = await startTappedStack({
      sim: { models: [{ id: MODEL, nSlots: 1 }] },
      env: { N_SLOTS: '1', SAVE_POLICY: 'smart' },
    }));
    const a = opening(631);
    const first = await chat(stack, a);
    const b = opening(632);
    await chat(stack, b); // one slot: A is saved before B takes it; B stays unsaved in the slot
    const heldSave = tap.hold((r) => r.path.includes('action=save'));
    const simMark = stack.sim.events.length;
    const cleanup = oneByteCleanup(stack);

    // A comes back: the plan saves B first, then restores A. Cleanup runs while B's save is in flight.
    const pending = chat(stack, continued(a, first.content, 633));
    pending.catch(() => undefined); // awaited below
    let stats;
    try {
      const save = await withDeadline(heldSave.arrived, 5000, 'the save before the restore');
      assert.equal(save.body.filename, keyOf(b));
      stats = await cleanup.runOnce();
    } finally {
      heldSave.release();
    }
    assert.equal(stats.skippedPinned, 1, 'the planned file is protected');
    assert.equal(stats.deletedBySize, 0);
    assert.equal(await stored(stack, a), true, 'the file the plan restores is kept');

    const next = await pending;
    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.ok, true);
    assert.equal(next.line.restore?.ok, true);
    assert.ok(next.timings.cache_n >= first.timings.prompt_n, `cache_n ${next.timings.cache_n}`);
    assert.equal(stack.proxy.state.index.isPinned(keyOf(a)), false, 'unpinned once the restore is done');
  });
  it('reconciles at start-up: an entry whose file is gone is dropped, a key-named file without a meta is deleted, nothing else is touched', async () => {
    stack = await startStack(); // SAVE_POLICY=always: each conversation is saved after its answer
    const a = opening(641);
    const first = await chat(stack, a);
    await chat(stack, opening(642)); // stays whole: shows that files of this server are here
    const c = opening(643);
    await chat(stack, c);
    await unlink(join(stack.cacheDir, keyOf(a))); // the file is gone, its meta stays
    await unlink(metaPath(stack.metaDir, keyOf(c))); // the meta is gone (its write failed), the file stays
    await age(stack, c, 2);
    const strangers = ['notes.txt', keyOf(c).toUpperCase()];
    for (const name of strangers) {
      await writeFile(join(stack.cacheDir, name), 'not ours');
      const t = Date.now() / 1000 - 2 * HOUR_S;
      await utimes(join(stack.cacheDir, name), t, t);
    }
    await stack.sim.restart();

    const done = await restartAndClean(stack);

    assert.equal(done.droppedMissing, 1);
    assert.equal(done.deletedUnindexed, 1);
    assert.equal(await stored(stack, a), false, 'the entry went with its file');
    assert.equal(await exists(join(stack.cacheDir, keyOf(c))), false, 'the file without a meta is deleted');
    for (const name of strangers) assert.equal(await exists(join(stack.cacheDir, name)), true, `${name} is left alone`);
    const simMark = stack.sim.events.length;
    const next = await chat(stack, continued(a, first.content, 644));
    assert.deepEqual(slotFileEvents(stack.sim, 'restore', simMark), [], 'no restore of a file that is gone');
    assert.equal(next.line.decision, 'cold');
  });
});
