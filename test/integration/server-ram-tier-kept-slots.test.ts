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
import { RECHECK_AFTER_QUIET_MS } from '../../src/generation/slot-truth.js';
import { IDLE_CLEARING_FOUND } from '../../src/backend/backend.js';

/** A proxy in front of a simulator with 2 slots of their own and llama-server's default RAM cache. */
function startKeeping(policy: 'smart' | 'always'): Promise<Stack> {
  return startStack({
    sim: { models: [{ id: 'tiny', nSlots: 2 }], cacheRamMiB: 8192 },
    env: { SAVE_POLICY: policy, IDLE_SAVE_SECONDS: '1' },
  });
}

const NOT_PAYING =
  "leaving answers to the server's RAM cache does not pay here (their rescues cost more than saving them): saving them instead, leaving one now and then to notice a change";

const savedFromRam = (stack: Stack, key: string) =>
  stack.logs.lines.some((l) => l.msg === "saved from the server's RAM cache" && l.key === key.slice(0, 16));

describe(
  "the server's RAM cache in front, disk behind it (a server that keeps idle slots)",
  { timeout: 30_000 },
  () => {
    const stacks = stacksPerTest();

    it('an answer pushed out of its slot unsaved comes back from the RAM cache; the one it pushes out is saved from there within the loss window', async () => {
      const stack = stacks.keep(await startKeeping('smart'));
      await chat(stack, opening(5100));
      // Its save after the answer (in the idle time) tells the proxy the size of a token's state.
      await logLineAfter(stack.logs, 0, 'saved after answer');
      // Answered a moment apart, before write-behind's idle time: b goes out for d, into the RAM cache with no save.
      const b = opening(5101);
      const b1 = await chat(stack, b);
      const c = opening(5102);
      const c1 = await chat(stack, c);
      const d1 = await chat(stack, opening(5103));
      assert.equal(d1.line.slot, b1.line.slot, JSON.stringify(d1.line));
      assert.equal(d1.line.evict_save, undefined, JSON.stringify(d1.line));
      const mark = slotFileEvents(stack.sim, 'restore').length;
      // b comes back on c's slot, from the RAM cache (disk has nothing of it); c goes there in its turn.
      const b2 = await chat(stack, continued(b, b1.content, 5104));
      assert.equal(b2.line.decision, 'server_cache', JSON.stringify(b2.line));
      assert.equal(b2.line.slot, c1.line.slot, JSON.stringify(b2.line));
      assert.equal(b2.line.evict_save, undefined, JSON.stringify(b2.line));
      assert.ok(b2.timings.cache_n >= b1.timings.cache_n + b1.timings.prompt_n, JSON.stringify(b2.timings));
      assert.equal(slotFileEvents(stack.sim, 'restore').length, mark, 'nothing read back from disk');
      // c reaches the disk within its loss window, from the RAM cache.
      const cMeta = metaPath(stack.metaDir, keyOf(c));
      assert.equal(await exists(cMeta), false, 'not saved at its eviction');
      const deadline = performance.now() + 1500;
      while (!(await exists(cMeta)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      assert.ok(await exists(cMeta), 'c on disk within the loss window');
      assert.ok(savedFromRam(stack, keyOf(c)), 'brought back from the RAM cache and saved');
      // Its next turn reuses all of it.
      const c2 = await chat(stack, continued(c, c1.content, 5105));
      assert.ok(c2.timings.cache_n >= c1.timings.cache_n + c1.timings.prompt_n, JSON.stringify(c2.timings));
    });

    it('a conversation disk holds as far as the RAM cache is restored from disk: exactly its state', async () => {
      const stack = stacks.keep(await startKeeping('smart'));
      const a = opening(5111);
      const a1 = await chat(stack, a);
      await logLineAfter(stack.logs, 0, 'saved after answer');
      await chat(stack, opening(5112));
      await chat(stack, opening(5113)); // pushes a out: on disk already, the cheapest loss
      const a2 = await chat(stack, continued(a, a1.content, 5114));
      assert.equal(a2.line.decision, 'restore', JSON.stringify(a2.line));
      assert.ok(a2.timings.cache_n >= a1.timings.cache_n + a1.timings.prompt_n, JSON.stringify(a2.timings));
    });

    it('a server restarted while the proxy heard nothing: its emptied slots tell, and the turn is restored from disk', async () => {
      const stack = stacks.keep(await startKeeping('smart'));
      const a = opening(5301);
      const a1 = await chat(stack, a);
      await logLineAfter(stack.logs, 0, 'saved after answer');
      const [b, c] = [opening(5302), opening(5303)];
      await chat(stack, b);
      await chat(stack, c); // pushes a (on disk) into the RAM cache
      // Both saved after their answers: the restart comes after a quiet while, as after a crash or an unload.
      for (const messages of [b, c])
        await logLineAfter(stack.logs, 0, 'saved after answer', (l) => l.key === keyOf(messages).slice(0, 16));
      await stack.sim.restart(); // the RAM cache and the slots are gone
      await new Promise((resolve) => setTimeout(resolve, RECHECK_AFTER_QUIET_MS + 100));
      const a2 = await chat(stack, continued(a, a1.content, 5304));
      assert.equal(a2.line.decision, 'restore', JSON.stringify(a2.line));
      assert.ok(a2.timings.cache_n >= a1.timings.cache_n + a1.timings.prompt_n, JSON.stringify(a2.timings));
      const misses = stack.logs.lines.filter((l) => String(l.msg).startsWith("the server's RAM cache no longer held"));
      assert.deepEqual(misses, []);
    });

    it('a restart that a save after the answer finds (its slot empty) is not taken for a server that clears idle slots', async () => {
      const stack = stacks.keep(await startKeeping('smart'));
      const a = opening(5401);
      const a1 = await chat(stack, a);
      await stack.sim.restart(); // before the save after the answer
      await logLineAfter(
        stack.logs,
        0,
        'a slot of a server that keeps idle slots was found empty (restarted?); forgetting what its slots held',
      );
      const res = await fetch(`${stack.url}/proxycache/status`);
      const status = (await res.json()) as { backends: Array<{ clears_idle_slots: unknown }> };
      assert.notEqual(status.backends[0]!.clears_idle_slots, true);
      assert.equal(stack.logs.lines.filter((l) => l.msg === IDLE_CLEARING_FOUND).length, 0);
      // Pinned as before: the next conversations are kept in their slots and reuse them.
      const b = opening(5402);
      const b1 = await chat(stack, b);
      const b2 = await chat(stack, continued(b, b1.content, 5403));
      assert.equal(b2.line.decision, 'resident', JSON.stringify(b2.line));
      assert.ok(a1.timings.prompt_n > 0);
    });

    it('where rescues cost more than saving, stops leaving answers to the RAM cache: the next one pushed out is saved at its eviction', async () => {
      const stack = stacks.keep(await startKeeping('smart'));
      await chat(stack, opening(5500));
      await logLineAfter(stack.logs, 0, 'saved after answer');
      // One turn each, back to back: each pushes out the one two before it, which nothing brings back, so its rescue
      // (a replay and a save) runs within the loss window.
      for (let i = 1; i <= 6; i++) await chat(stack, opening(5500 + i));
      const rescues = () => stack.logs.withMsg("saved from the server's RAM cache").length;
      const deadline = performance.now() + 3000;
      while (rescues() < 3 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      await new Promise((resolve) => setTimeout(resolve, 1200)); // past every loss window: the rescues are over
      const status = (await (await fetch(`${stack.url}/proxycache/status`)).json()) as {
        backends: Array<{ ram_tier: Record<string, number | boolean> }>;
      };
      const tier = status.backends[0]!.ram_tier;
      assert.equal(tier.leaves_answers, false, JSON.stringify(tier));
      assert.ok(Number(tier.rescued) >= 3 && Number(tier.rescue_ms) > Number(tier.save_ms), JSON.stringify(tier));
      // The simulator's replies are words its tokenizer spells back the same: replays keep the answer's text.
      assert.deepEqual((tier as Record<string, unknown>).replays_without_text, [], JSON.stringify(tier));
      const rescuesBefore = rescues();
      const y = opening(5510);
      await chat(stack, y);
      const verdict = await logLineAfter(stack.logs, 0, NOT_PAYING);
      assert.equal(verdict.rescued, tier.rescued, JSON.stringify(verdict));
      await chat(stack, opening(5511));
      const pushing = await chat(stack, opening(5512));
      assert.equal(pushing.line.evict_save?.ok, true, JSON.stringify(pushing.line));
      await new Promise((resolve) => setTimeout(resolve, 1200)); // past y's loss window
      assert.equal(savedFromRam(stack, keyOf(y)), false, 'saved at its eviction, not rescued');
      assert.ok(await exists(metaPath(stack.metaDir, keyOf(y))));
      assert.equal(rescues(), rescuesBefore);
      assert.equal(stack.logs.lines.filter((l) => l.msg === NOT_PAYING).length, 1, 'told once');
    });

    it("where a reply's text does not tokenize back to the generated tokens, rescues replay the prompt alone after the first", async () => {
      const stack = stacks.keep(
        await startStack({
          sim: { models: [{ id: 'tiny', nSlots: 2, replyTextTokenizesDifferently: true }], cacheRamMiB: 8192 },
          env: { SAVE_POLICY: 'smart', IDLE_SAVE_SECONDS: '1' },
        }),
      );
      const reply = { maxTokens: 16 };
      await chat(stack, opening(5600), reply);
      await logLineAfter(stack.logs, 0, 'saved after answer');
      // As above: each pushes out the one two before it, rescued within the loss window.
      for (let i = 1; i <= 6; i++) await chat(stack, opening(5600 + i), reply);
      const rescueLines = () => stack.logs.withMsg("saved from the server's RAM cache");
      const withoutReply = () => rescueLines().find((l) => l.with_reply === false);
      const deadline = performance.now() + 3000;
      while (!withoutReply() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      const first = rescueLines()[0];
      assert.ok(first, 'a rescue');
      // The first carries the reply's text and prefills the reply again (but the last token, which the state lacks).
      assert.equal(first.with_reply, true, JSON.stringify(first));
      assert.ok(Number(first.prompt_n) >= reply.maxTokens - 1, JSON.stringify(first));
      // The next ones to start once it is over replay the prompt alone: nothing left to prefill. (On a loaded
      // machine the second rescue may start before the first ends, and carry the text too.)
      const alone = withoutReply();
      assert.ok(alone, JSON.stringify(rescueLines()));
      assert.ok(Number(alone.prompt_n) <= 1, JSON.stringify(alone));
      const status = (await (await fetch(`${stack.url}/proxycache/status`)).json()) as {
        backends: Array<{ ram_tier: { replays_without_text: string[] } }>;
      };
      assert.deepEqual(status.backends[0]!.ram_tier.replays_without_text, ['tiny']);
      const told = stack.logs.lines.filter((l) => /did not bring back most of its tokens/.test(String(l.msg)));
      assert.equal(told.length, 1, 'told once');
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
  },
);
