/**
 * On a server that keeps its idle slots (`-np N`) and has a RAM cache, that cache is the first tier and the proxy's
 * disk the second (issue 7.6): a task pinned to a slot holding another prompt moves that prompt into the RAM cache and
 * takes its own from there. So a conversation pushed out of its slot comes back from RAM rather than from disk, and
 * the one it pushes out is not saved first: a rescue writes it to disk within the loss window.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chat, continued, exists, keyOf, logLineAfter, metaPath, opening, slotFileEvents } from '../support/cache.js';
import { startStack } from '../support/stack.js';
import type { Stack } from '../support/stack.js';
import { stacksPerTest } from '../support/tapped-stack.js';

/** A proxy in front of a simulator with 2 slots of their own and llama-server's default RAM cache. */
function startKeeping(policy: 'smart' | 'always'): Promise<Stack> {
  return startStack({
    sim: { models: [{ id: 'tiny', nSlots: 2 }], cacheRamMiB: 8192 },
    env: { SAVE_POLICY: policy, IDLE_SAVE_SECONDS: '1' },
  });
}

const savedFromRam = (stack: Stack, key: string) =>
  stack.logs.lines.some((l) => l.msg === "saved from the server's RAM cache" && l.key === key.slice(0, 16));

describe("the server's RAM cache in front, disk behind it (a server that keeps idle slots)", { timeout: 30_000 }, () => {
  const stacks = stacksPerTest();

  it('a conversation pushed out of its slot comes back from the RAM cache; the one it pushes out is saved from there within the loss window', async () => {
    const stack = stacks.keep(await startKeeping('smart'));
    const a = opening(5101);
    const a1 = await chat(stack, a);
    // Its save after the answer (in the idle time) tells the proxy the size of a token's state.
    await logLineAfter(stack.logs, 0, 'saved after answer');
    const b = opening(5102);
    const b1 = await chat(stack, b); // the empty slot
    const c1 = await chat(stack, opening(5103)); // pushes a out: on disk already, the cheapest loss
    assert.equal(c1.line.slot, a1.line.slot, JSON.stringify(c1.line));
    const mark = slotFileEvents(stack.sim, 'restore').length;
    // a comes back on b's slot: b, answered a moment ago and not saved yet, goes into the RAM cache with no save.
    const a2 = await chat(stack, continued(a, a1.content, 5104));
    assert.equal(a2.line.decision, 'server_cache', JSON.stringify(a2.line));
    assert.equal(a2.line.slot, b1.line.slot, JSON.stringify(a2.line));
    assert.equal(a2.line.evict_save, undefined, JSON.stringify(a2.line));
    assert.ok(a2.timings.cache_n >= a1.timings.cache_n + a1.timings.prompt_n, JSON.stringify(a2.timings));
    assert.equal(slotFileEvents(stack.sim, 'restore').length, mark, 'nothing read back from disk');
    // b reaches the disk within its loss window, from the RAM cache.
    const bMeta = metaPath(stack.metaDir, keyOf(b));
    assert.equal(await exists(bMeta), false, 'not saved at its eviction');
    const deadline = performance.now() + 1500;
    while (!(await exists(bMeta)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    assert.ok(await exists(bMeta), 'b on disk within the loss window');
    assert.ok(savedFromRam(stack, keyOf(b)), 'brought back from the RAM cache and saved');
    // Its next turn reuses all of it.
    const b2 = await chat(stack, continued(b, b1.content, 5105));
    assert.ok(b2.timings.cache_n >= b1.timings.cache_n + b1.timings.prompt_n, JSON.stringify(b2.timings));
  });

  it('the seed policy (SAVE_POLICY=always) saves before the eviction and restores from disk, as the Python proxy does', async () => {
    const stack = stacks.keep(await startKeeping('always'));
    const a = opening(5201);
    const a1 = await chat(stack, a);
    await chat(stack, opening(5202));
    await chat(stack, opening(5203));
    const a2 = await chat(stack, continued(a, a1.content, 5204));
    assert.equal(a2.line.decision, 'restore', JSON.stringify(a2.line));
    assert.ok(a2.timings.cache_n >= a1.timings.cache_n + a1.timings.prompt_n, JSON.stringify(a2.timings));
  });
});
