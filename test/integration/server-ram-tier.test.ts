/**
 * On a server that clears idle slots (llama-server's default configuration), its RAM cache is the first tier and
 * the proxy's disk the second (issue 7.6): a conversation the RAM cache holds is sent unpinned, so that the server
 * loads it itself; disk still gets each conversation's state within the loss window (saved from the RAM cache when
 * it was left there, else before a launch clears it), and serves what the RAM cache cannot have (evicted, or lost
 * with a restart).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chat, continued, exists, keyOf, logLineAfter, metaPath, opening, slotFileEvents } from '../support/cache.js';
import type { ChatResult } from '../support/cache.js';
import { postJson, startStack } from '../support/stack.js';
import type { Stack, StackOptions } from '../support/stack.js';
import { stacksPerTest, startTappedStack } from '../support/tapped-stack.js';
import type { TappedStack } from '../support/tapped-stack.js';
import { eventually } from '../support/deadline.js';
import { words } from '../support/text.js';
import type { TapRequest } from '../support/tap.js';
import { RECHECK_AFTER_QUIET_MS } from '../../src/generation/slot-truth.js';
import { IDLE_CLEARING_FOUND } from '../../src/backend/backend.js';

/**
 * A proxy in front of a simulator that clears idle slots into a RAM cache of `cacheRamMiB`, found out at start-up.
 * Write-behind off unless `env` says (and with it the answers left to the RAM cache): every launch saves what it
 * clears. `nCtx`: the cells of its unified KV buffer, shared by the 4 slots.
 */
async function startClearing(cacheRamMiB: number, env: StackOptions['env'] = {}, nCtx?: number): Promise<Stack> {
  const stack = await startStack({
    sim: { models: [{ id: 'tiny', ...(nCtx && { nCtx }) }], cacheRamMiB },
    env: { SAVE_POLICY: 'smart', N_SLOTS: '4', IDLE_SAVE_SECONDS: '0', ...env },
  });
  try {
    await logLineAfter(stack.logs, 0, IDLE_CLEARING_FOUND, (l) => l.seen_by === 'start-up probe');
  } catch (err) {
    await stack.close(); // not kept by the test yet: left running, it would hold the test file open
    throw err;
  }
  return stack;
}

/**
 * The same behind a tap (see tap.ts), with the default RAM cache and a loss window long enough to leave answers
 * there: the test can hold or watch what reaches the simulator. Kept by `stacks` as soon as it runs.
 */
async function startTappedClearing(stacks: ReturnType<typeof stacksPerTest>): Promise<TappedStack> {
  const tapped = stacks.keep(
    await startTappedStack({
      sim: { models: [{ id: 'tiny' }], cacheRamMiB: 8192 },
      env: { SAVE_POLICY: 'smart', N_SLOTS: '4', IDLE_SAVE_SECONDS: '600' },
    }),
  );
  const { stack, tap } = tapped;
  await logLineAfter(stack.logs, tapped.logMark, IDLE_CLEARING_FOUND, (l) => l.backend === tap.url, 15_000);
  return tapped;
}

interface Turn {
  messages: ReturnType<typeof opening>;
  result: ChatResult;
}
/** Tokens the slot held after a turn: what the next turn of that conversation can reuse. */
const heldAfter = (turn: Turn) => turn.result.timings.cache_n + turn.result.timings.prompt_n;
const missLines = (stack: Stack) =>
  stack.logs.lines.filter((l) => String(l.msg).startsWith("the server's RAM cache no longer held"));

/** Conversations of this many words, in a KV buffer of as many cells as one of them needs, with room to grow. */
const LONG_WORDS = 300;
const CELLS_FOR_ONE = 560;
const CELLS_FOR_TWO = 900;

/** One more turn of every conversation, in order; returns the new turns. */
async function nextRound(stack: Stack, turns: Turn[], seed: number): Promise<Turn[]> {
  const next: Turn[] = [];
  for (const [i, turn] of turns.entries()) {
    const messages = continued(turn.messages, turn.result.content, seed + i);
    next.push({ messages, result: await chat(stack, messages) });
  }
  return next;
}

describe(
  "the server's RAM cache in front, disk behind it (a server that clears idle slots)",
  { timeout: 60_000 },
  () => {
    const stacks = stacksPerTest();

    it('with the default RAM cache, every later turn comes back from it unpinned; disk gets each conversation within the loss window', async () => {
      const stack = stacks.keep(await startClearing(8192, { IDLE_SAVE_SECONDS: '1' }));
      let turns: Turn[] = [];
      for (const seed of [4101, 4102, 4103])
        turns.push({ messages: opening(seed), result: await chat(stack, opening(seed)) });
      for (const round of [4110, 4120]) {
        const next = await nextRound(stack, turns, round);
        for (const [i, turn] of next.entries()) {
          assert.equal(turn.result.line.decision, 'server_cache', JSON.stringify(turn.result.line));
          assert.ok(turn.result.timings.cache_n >= heldAfter(turns[i]!), JSON.stringify(turn.result.timings));
        }
        turns = next;
      }
      assert.deepEqual(slotFileEvents(stack.sim, 'restore'), [], 'nothing read back from disk');
      // Turns that continued at once were never written; within the window, each conversation's last turn is on disk
      // (left to the RAM cache, it was brought back and saved; the last one run, from its slot in the idle time).
      for (const turn of turns) {
        const meta = metaPath(stack.metaDir, keyOf(turn.messages));
        await eventually(() => exists(meta), 3000, JSON.stringify(turn.result.line));
      }
      assert.equal(
        slotFileEvents(stack.sim, 'save').filter((e) => e.ok).length,
        4,
        'the first answer, then the last three',
      );
      assert.deepEqual(missLines(stack), []);
    });

    it("where a reply's text does not tokenize back, the rescues queued behind the first replay the prompt alone", async () => {
      const { stack, tap, logMark } = stacks.keep(
        await startTappedStack({
          sim: { models: [{ id: 'tiny', replyTextTokenizesDifferently: true }], cacheRamMiB: 8192 },
          env: { SAVE_POLICY: 'smart', N_SLOTS: '4', IDLE_SAVE_SECONDS: '1' },
        }),
      );
      await logLineAfter(stack.logs, logMark, IDLE_CLEARING_FOUND, (l) => l.backend === tap.url, 15_000);
      const reply = { maxTokens: 16 };
      // The first rescue's replay (nothing to generate) is held until the next rescues are due and queue behind it.
      const firstReplay = tap.hold((r) => r.body?.n_predict === 0);
      // Back to back: each launch clears the answers before it into the RAM cache, to be rescued within the window.
      for (const seed of [4301, 4302, 4303, 4304, 4305]) await chat(stack, opening(seed), reply);
      await firstReplay.arrived;
      await new Promise((resolve) => setTimeout(resolve, 600)); // past the others' rescue times (window 1 s)
      firstReplay.release();
      const rescueLines = () => stack.logs.withMsg("saved from the server's RAM cache");
      await eventually(() => rescueLines().length >= 3, 5000, 'three rescues');
      const [first, ...after] = rescueLines();
      // The first carries the reply's text and prefills it again (but its last token, which the state lacks) ...
      assert.equal(first!.with_reply, true, JSON.stringify(first));
      assert.ok(Number(first!.prompt_n) >= reply.maxTokens - 1, JSON.stringify(first));
      // ... and the ones queued behind it, each chosen as it was sent, replay the prompt alone: nothing to prefill.
      for (const line of after) {
        assert.equal(line.with_reply, false, JSON.stringify(line));
        assert.ok(Number(line.prompt_n) <= 1, JSON.stringify(line));
      }
    });

    it('a RAM cache smaller than declared: a miss lowers the limit, and from then on disk serves what RAM cannot', async () => {
      // About three conversations fit in the simulator's RAM cache; the proxy believes llama-server's default 8 GiB.
      const stack = stacks.keep(await startClearing(0.4, { SERVER_CACHE_RAM_MIB: '8192' }));
      let turns: Turn[] = [];
      for (let i = 0; i < 6; i++)
        turns.push({ messages: opening(4200 + i), result: await chat(stack, opening(4200 + i)) });
      turns = await nextRound(stack, turns, 4210);
      const misses = missLines(stack);
      assert.ok(misses.length >= 1, 'the first turns sent to the RAM cache found it evicted');
      for (const miss of misses) assert.ok((miss.ram_cache_mib as number) < 8192, JSON.stringify(miss));
      const next = await nextRound(stack, turns, 4220);
      assert.equal(missLines(stack).length, misses.length, 'no more misses');
      for (const [i, turn] of next.entries()) {
        assert.ok(['server_cache', 'restore'].includes(turn.result.line.decision), JSON.stringify(turn.result.line));
        assert.ok(turn.result.timings.cache_n >= heldAfter(turns[i]!), JSON.stringify(turn.result.timings));
      }
      assert.ok(
        next.some((t) => t.result.line.decision === 'restore'),
        'what the smaller cache cannot hold came from disk',
      );
    });

    it('a KV buffer with room for one conversation at a time: idle slots are emptied (saved first) so that a later turn loads from RAM', async () => {
      // The server loads a conversation from its RAM cache before it clears its idle slots: the one that just ran
      // holds the cells the next conversation needs. Alone, the load fails and the turn prefills from scratch.
      const stack = stacks.keep(await startClearing(8192, { IDLE_SAVE_SECONDS: '1' }, CELLS_FOR_ONE));
      const turns: Turn[] = [];
      for (const seed of [4501, 4502, 4503])
        turns.push({ messages: opening(seed, LONG_WORDS), result: await chat(stack, opening(seed, LONG_WORDS)) });
      assert.ok(heldAfter(turns[0]!) * 2 > CELLS_FOR_ONE, 'two conversations do not fit side by side');
      const next = await nextRound(stack, turns, 4510);
      // An emptied conversation comes back from disk.
      for (const [i, turn] of next.entries()) {
        assert.ok(['server_cache', 'restore'].includes(turn.result.line.decision), JSON.stringify(turn.result.line));
        assert.ok(turn.result.timings.cache_n >= heldAfter(turns[i]!), JSON.stringify(turn.result.timings));
      }
      assert.ok(next.some((t) => t.result.line.decision === 'server_cache'));
      assert.deepEqual(missLines(stack), []);
      const emptied = stack.logs.lines.filter((l) => String(l.msg).startsWith('emptied idle slots to make room'));
      assert.ok(emptied.length >= 2, `${emptied.length} slots emptied`);
    });

    it('a KV buffer without room for a conversation in every slot: answers are saved before a launch clears them, not left to the RAM cache', async () => {
      // A rescue would have to load the conversation back beside the others: on such a buffer it waits for room.
      const stack = stacks.keep(await startClearing(8192, { IDLE_SAVE_SECONDS: '4' }, CELLS_FOR_ONE));
      // A first save tells the proxy the size of a token's state (until then nothing is left to the RAM cache).
      await chat(stack, opening(4550, LONG_WORDS));
      const a = opening(4551, LONG_WORDS);
      await chat(stack, a);
      const b = await chat(stack, opening(4552, LONG_WORDS)); // its launch clears a's slot
      assert.ok(await exists(metaPath(stack.metaDir, keyOf(a))), JSON.stringify(b.line));
    });

    it('with room for one conversation at a time and disk only, a restore is made room for; no entry is dropped', async () => {
      const stack = stacks.keep(await startClearing(8192, { SERVER_CACHE_RAM_MIB: '0' }, CELLS_FOR_ONE));
      const turns: Turn[] = [];
      for (const seed of [4601, 4602, 4603])
        turns.push({ messages: opening(seed, LONG_WORDS), result: await chat(stack, opening(seed, LONG_WORDS)) });
      const next = await nextRound(stack, turns, 4610);
      for (const [i, turn] of next.entries()) {
        assert.equal(turn.result.line.decision, 'restore', JSON.stringify(turn.result.line));
        assert.ok(turn.result.timings.cache_n >= heldAfter(turns[i]!), JSON.stringify(turn.result.timings));
      }
      const dropped = stack.logs.lines.filter((l) => String(l.msg).startsWith('cache file cannot be restored'));
      assert.deepEqual(dropped, []);
    });

    it("a restore that finds no room (another client's conversation in the buffer) keeps its entry", async () => {
      const stack = stacks.keep(await startClearing(8192, { SERVER_CACHE_RAM_MIB: '0' }, CELLS_FOR_ONE));
      const a = opening(4701, LONG_WORDS);
      const first = await chat(stack, a);
      await chat(stack, opening(4702, LONG_WORDS)); // its launch saves a to disk
      const key = keyOf(a);
      assert.ok(await exists(metaPath(stack.metaDir, key)));
      // Behind the proxy's back: another client's conversation holds the cells a restore of a needs.
      const other = { model: 'tiny', messages: opening(4703, LONG_WORDS), max_tokens: 8, id_slot: 1 };
      assert.equal((await postJson(stack.sim.url, '/v1/chat/completions', other)).status, 200);
      const again = await chat(stack, continued(a, first.content, 4704));
      assert.equal(again.line.decision, 'restore', JSON.stringify(again.line));
      assert.equal((again.line.restore as { ok: boolean }).ok, false, JSON.stringify(again.line));
      assert.ok(
        stack.logs.lines.some((l) => String(l.msg).startsWith('the server could not restore the cache file (no room')),
      );
      assert.ok(await exists(metaPath(stack.metaDir, key)), 'the entry is kept');
    });

    it('without a RAM cache, where idle slots are cleared only once the buffer is full: a restore without room is made room for and tried again', async () => {
      const stack = stacks.keep(
        await startStack({
          sim: { models: [{ id: 'tiny', nCtx: CELLS_FOR_TWO }], cacheRamMiB: 0 },
          env: { SAVE_POLICY: 'smart', N_SLOTS: '4', SERVER_CACHE_RAM_MIB: '0' },
        }),
      );
      const first: Turn[] = [];
      for (const seed of [4801, 4802, 4803, 4804])
        first.push({ messages: opening(seed, LONG_WORDS), result: await chat(stack, opening(seed, LONG_WORDS)) });
      const rounds = [first];
      for (const round of [4810, 4820, 4830]) rounds.push(await nextRound(stack, rounds.at(-1)!, round));
      const said = (start: string) => stack.logs.lines.filter((l) => String(l.msg).startsWith(start));
      assert.ok(said('the server could not restore the cache file').length >= 1, 'a restore found no room');
      assert.deepEqual(said('cache file cannot be restored'), []);
      // Before the proxy saw the server clear a slot, that slot's conversation was lost (as without the proxy); from
      // then on every restore succeeds, the ones that found no room at first included.
      for (const [r, round] of rounds.entries()) {
        for (const [i, turn] of round.entries()) {
          if (r === 0 || turn.result.line.decision !== 'restore') continue;
          assert.equal(turn.result.line.restore?.ok, true, JSON.stringify(turn.result.line));
          assert.ok(turn.result.timings.cache_n >= heldAfter(rounds[r - 1]![i]!), JSON.stringify(turn.result.line));
        }
      }
      for (const turn of rounds.at(-1)!) assert.equal(turn.result.line.decision, 'restore');
    });

    it('a server restarted while the proxy heard nothing: its task ids tell, and the turn is restored from disk', async () => {
      const stack = stacks.keep(await startClearing(8192));
      const a = opening(4301);
      const first = await chat(stack, a);
      await chat(stack, opening(4302)); // its launch saves a to disk and moves it into the RAM cache
      await stack.sim.restart();
      await new Promise((resolve) => setTimeout(resolve, RECHECK_AFTER_QUIET_MS + 100));
      const mark = stack.logs.lines.length;
      const back = await chat(stack, continued(a, first.content, 4303));
      assert.equal(back.line.decision, 'restore', JSON.stringify(back.line));
      assert.ok(back.timings.cache_n >= first.timings.cache_n + first.timings.prompt_n, JSON.stringify(back.timings));
      await logLineAfter(stack.logs, mark, 'the server started again (its task ids did); forgetting what it held');
      assert.deepEqual(missLines(stack), []);
    });

    it('a server restarted while the proxy was busy: the miss is told from a smaller cache by the task ids', async () => {
      const stack = stacks.keep(await startClearing(8192));
      const a = opening(4401);
      const b = opening(4402);
      const a1 = await chat(stack, a);
      const b1 = await chat(stack, b); // its launch moves a into the RAM cache (and saves it)
      await chat(stack, opening(4403)); // and this one b
      await stack.sim.restart();
      // At once: no quiet spell for the proxy to check the server before it counts on the RAM cache.
      const mark = stack.logs.lines.length;
      const a2 = await chat(stack, continued(a, a1.content, 4404));
      assert.equal(a2.line.decision, 'server_cache', JSON.stringify(a2.line));
      await logLineAfter(stack.logs, mark, 'the server started again (its task ids did); forgetting what it held');
      assert.deepEqual(missLines(stack), [], 'not taken for a smaller RAM cache');
      const b2 = await chat(stack, continued(b, b1.content, 4405));
      assert.equal(b2.line.decision, 'restore', JSON.stringify(b2.line));
      assert.ok(b2.timings.cache_n >= b1.timings.cache_n + b1.timings.prompt_n, JSON.stringify(b2.timings));
    });

    it('a small request does not wait at the launch gate while a big unpinned task is still being looked for', async () => {
      const tapped = await startTappedClearing(stacks);
      const { stack: s, tap } = tapped;
      const a = opening(4701);
      const a1 = await chat(s, a);
      await chat(s, opening(4702)); // its launch moves a into the RAM cache
      const a2Messages = continued(a, a1.content, 4703);
      const a2Sent = (r: TapRequest) =>
        r.path === '/v1/chat/completions' && r.body?.messages?.at(-1)?.content === a2Messages.at(-1)!.content;
      // The first look at GET /slots after a2's task was sent: the proxy is finding where the server put it.
      const lookup = tap.hold(
        (r: TapRequest) => r.path.startsWith('/slots') && r.method === 'GET' && tap.requests.some(a2Sent),
      );
      const markA2 = s.logs.lines.length;
      const a2Done = chat(s, a2Messages);
      await lookup.arrived;
      const small = await chat(s, [{ role: 'user', content: words(8, 4704) }]);
      assert.equal(small.line.decision, 'small', JSON.stringify(small.line));
      assert.ok((small.line.gate_ms as number) < 1000, `waited ${String(small.line.gate_ms)} ms at the gate`);
      lookup.release();
      const a2 = await a2Done;
      // Its own line (chat() takes the first one after its start, which was the small request's).
      a2.line = await logLineAfter(s.logs, markA2, 'chat', (l) => l.key === keyOf(a2Messages).slice(0, 16));
      assert.equal(a2.line.decision, 'server_cache', JSON.stringify(a2.line));
      const a3 = await chat(s, continued(a2Messages, a2.content, 4705));
      assert.equal(a3.line.decision, 'resident', JSON.stringify(a3.line));
      assert.equal(a3.line.slot, a2.line.slot, 'a2 was found on its slot');
      assert.ok(a3.timings.cache_n >= a2.timings.cache_n + a2.timings.prompt_n, JSON.stringify(a3.timings));
    });

    it("big tasks sent without a pin carry a mark, which finds each on its slot though another client's task started at the same moment", async () => {
      const tapped = await startTappedClearing(stacks);
      const { stack: s, tap } = tapped;
      type Shown = Array<{ id: number; params?: { seed?: number } }>;
      const sentWith = (messages: readonly { content: string }[]) => (r: TapRequest) =>
        r.path === '/v1/chat/completions' && r.body?.messages?.at(-1)?.content === messages.at(-1)!.content;
      const upstream = (messages: readonly { content: string }[]) => tap.requests.find(sentWith(messages))!.body!;
      const slotShowing = async (seed: unknown) =>
        ((await (await fetch(`${s.sim.url}/slots`)).json()) as Shown).find((slot) => slot.params?.seed === seed)?.id;
      const lineOf = (messages: ReturnType<typeof opening>) =>
        logLineAfter(s.logs, tapped.logMark, 'chat', (l) => l.key === keyOf(messages).slice(0, 16));
      // The first one teaches the proxy that this server shows marks.
      const x = opening(4801);
      assert.equal((await chat(s, x)).line.decision, 'cold');
      assert.equal(upstream(x).id_slot, -1);
      assert.equal(typeof upstream(x).seed, 'number');
      // p is on its way to a slot; before the proxy's first look, another client's big task starts too.
      const p = opening(4802);
      const lookup = tap.hold(
        (r: TapRequest) => r.path.startsWith('/slots') && r.method === 'GET' && tap.requests.some(sentWith(p)),
      );
      const pDone = chat(s, p, { maxTokens: 64 });
      await lookup.arrived;
      const other = fetch(`${s.sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: opening(4803), max_tokens: 64, seed: 7 }),
      });
      await eventually(async () => (await slotShowing(7)) !== undefined, 10_000, "the other client's task to start");
      lookup.release();
      await Promise.all([pDone, other]);
      const pLine = await lineOf(p);
      assert.equal(pLine.decision, 'cold', JSON.stringify(pLine));
      assert.equal(pLine.slot, await slotShowing(upstream(p).seed), JSON.stringify(pLine));
      // A client's own seed is its own: sent as it is, and the task found as before (what started since its launch).
      const y = opening(4804);
      await s.openai.chat.completions.create({ model: 'tiny', messages: y, max_tokens: 8, seed: 42 });
      assert.equal(upstream(y).seed, 42);
      assert.equal((await lineOf(y)).slot, await slotShowing(42));
    });
  },
);
