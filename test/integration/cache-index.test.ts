/**
 * The prefix index lives in memory: it is loaded from META_DIR once at start-up and never re-scanned on the
 * request path, and what it loads at start is enough to restore from disk into empty slots.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import {
  chat,
  chatEvents,
  continued,
  keyOf,
  logLineAfter,
  metaPath,
  opening,
  slotFileEvents,
} from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';

/** Restart the simulator (its slots are empty afterwards, files kept) and the proxy; resolve with the index size it loaded. */
async function restartBoth(stack: Stack): Promise<number> {
  await stack.sim.restart();
  const mark = stack.logs.lines.length;
  await stack.restartProxy();
  const loaded = await logLineAfter(stack.logs, mark, 'cache index loaded');
  return Number(loaded.entries);
}

describe('the index in memory', { timeout: 60_000 }, () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  it('a meta file dropped into META_DIR after start is not seen by requests (no scan on the request path), but is loaded at the next start', async () => {
    stack = await startStack();
    const c = opening(401);
    const first = await chat(stack, c);
    const file = metaPath(stack.metaDir, keyOf(c));
    const metaText = await readFile(file, 'utf8');
    await rm(file);
    assert.equal(await restartBoth(stack), 0, 'precondition: the proxy starts without the entry');

    await writeFile(file, metaText);
    // The probe's own save fails, so the only entry the next start can load is the hand-written one.
    stack.sim.injectFault({ action: 'save', status: 500 });
    let simMark = stack.sim.events.length;
    const probe = await chat(stack, continued(c, first.content, 402));
    assert.deepEqual(slotFileEvents(stack.sim, 'restore', simMark), [], 'the hand-written meta was not read');
    assert.equal(probe.line.decision, 'cold');

    assert.equal(await restartBoth(stack), 1);
    simMark = stack.sim.events.length;
    const next = await chat(stack, continued(c, first.content, 403));
    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1, 'after a restart the same meta is used');
    assert.equal(restores[0]!.filename, keyOf(c));
    assert.equal(restores[0]!.ok, true);
    assert.equal(next.line.decision, 'restore');
  });

  it('after a restart of proxy and backend, the entries written before are loaded and restored into the empty slot', async () => {
    stack = await startStack();
    const a = opening(411);
    const first = await chat(stack, a);
    const b = opening(412);
    await chat(stack, b);
    assert.equal(await restartBoth(stack), 2);
    const simMark = stack.sim.events.length;

    const next = await chat(stack, continued(a, first.content, 413), { stream: true });

    const restores = slotFileEvents(stack.sim, 'restore', simMark);
    assert.equal(restores.length, 1);
    assert.equal(restores[0]!.filename, keyOf(a));
    assert.equal(restores[0]!.ok, true);
    assert.equal(chatEvents(stack.sim, simMark)[0]!.slot, restores[0]!.slot);
    assert.equal(next.line.decision, 'restore');
    const firstPrompt = first.timings.cache_n + first.timings.prompt_n;
    assert.ok(next.timings.cache_n >= firstPrompt, `cache_n ${next.timings.cache_n} >= ${firstPrompt}`);
  });
});
