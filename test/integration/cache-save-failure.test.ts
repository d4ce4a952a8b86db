/**
 * A save the backend refuses: the user's request is unaffected, no meta describes a file that may be partial or
 * stale (a previous meta for the key is removed, as the seed does), and the index forgets the key.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chat, continued, exists, keyOf, metaPath, MODEL, opening, slotFileEvents } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';

describe('failed save', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('never fails the request and leaves no meta', async () => {
    stack = await startStack();
    stack.sim.injectFault({ action: 'save', status: 500, message: 'injected save failure' });
    const a = opening(301);

    const res = await chat(stack, a, { stream: true });

    assert.equal(res.line.status, 200);
    assert.equal(res.finishReason, 'length', 'the stream ran to the end');
    assert.ok(res.content.length > 0);
    assert.equal(res.line.save?.ok, false);
    assert.match(String(res.line.save?.error), /500/);
    assert.equal(slotFileEvents(stack.sim, 'save').length, 1, 'the save was tried');
    assert.equal(await exists(metaPath(stack.metaDir, keyOf(a))), false);
    assert.deepEqual(await readdir(stack.metaDir), []);
  });

  it('removes the stale meta of the key and drops it from the index: a later continuation does not restore it', async () => {
    stack = await startStack({ sim: { models: [{ id: MODEL, nSlots: 1 }] } });
    const a = opening(311);
    const first = await chat(stack, a);
    assert.equal(first.line.save?.ok, true);
    assert.ok(await exists(metaPath(stack.metaDir, keyOf(a))), 'precondition: the first save wrote a meta');

    // The same prompt again: its save fails, and so does the save before its eviction below.
    stack.sim.injectFault({ action: 'save', status: 500, times: 2 });
    const again = await chat(stack, a);
    assert.equal(again.line.status, 200);
    assert.equal(again.line.save?.ok, false);
    assert.equal(await exists(metaPath(stack.metaDir, keyOf(a))), false, 'the stale meta is gone');

    const other = await chat(stack, opening(312));
    assert.equal(other.line.evict_save?.ok, false, 'the second injected fault hit the save before eviction');
    assert.equal(await exists(metaPath(stack.metaDir, keyOf(a))), false);
    // The file of the first save is still on disk: a restore would work if the index still offered it.
    assert.ok(await exists(join(stack.cacheDir, keyOf(a))));
    const simMark = stack.sim.events.length;

    const next = await chat(stack, continued(a, first.content, 313));

    assert.deepEqual(slotFileEvents(stack.sim, 'restore', simMark), [], 'no restore of a forgotten key');
    assert.equal(next.line.decision, 'cold');
    assert.equal(next.line.status, 200);
  });
});
